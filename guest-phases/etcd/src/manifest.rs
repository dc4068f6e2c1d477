//! The local etcd static Pod, as kubeadm's `phases/etcd/local.go` builds it for `kubeadm init`.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::join_host_port;
use kubeforge_api::release::Release;
use kubeforge_api::v1beta4::{Arg, LocalEtcd};
use kubeforge_sdk::staticpod::{
    self, ProbeTarget, Scheme, command, join_path, liveness_probe, merge_env_vars, probe_port,
    readiness_probe, set_arg, startup_probe, volume_mount, without_empty_lists,
};
use kubeforge_sdk::yaml;
use serde_json::{Value, json};

/// The component's name: the container, the Pod and the manifest file are named after it.
pub const ETCD: &str = "etcd";

/// kubeadm's default etcd data directory, used if the host left `etcd.local.dataDir` unset.
const DEFAULT_DATA_DIR: &str = "/var/lib/etcd";
const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";
const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
const METRICS_PORT: u16 = 2381;

/// The etcd settings that apply: `etcd.local`, or kubeadm's defaults when it is absent.
/// `None` when the cluster uses external etcd, which kubeadm does not run.
pub fn local_etcd(config: &EffectiveConfig) -> Option<LocalEtcd> {
    match &config.cluster.etcd.external {
        Some(_) => None,
        None => Some(config.cluster.etcd.local.clone().unwrap_or_default()),
    }
}

/// The etcd data directory on the node.
pub fn data_dir(local: &LocalEtcd) -> &str {
    local
        .data_dir
        .as_deref()
        .filter(|dir| !dir.is_empty())
        .unwrap_or(DEFAULT_DATA_DIR)
}

/// The manifest kubeadm writes to `etcd.yaml`, or `None` with external etcd.
pub fn etcd_manifest(config: &EffectiveConfig) -> Option<String> {
    etcd_pod(config).map(|pod| yaml::to_string(&pod))
}

/// The etcd static Pod, or `None` with external etcd.
pub fn etcd_pod(config: &EffectiveConfig) -> Option<Value> {
    let local = local_etcd(config)?;
    let certificates_dir = config.certificates_dir();
    // kubeadm appends "/etcd" without cleaning the path here, unlike in the flags.
    let certs_dir = format!("{certificates_dir}/etcd");
    let data_dir = data_dir(&local);
    let advertise_address = config.advertise_address();
    let (probe_host, probe_port_number, probe_scheme) =
        probe_endpoint(&local, is_ipv6(advertise_address));
    let probe = |path| ProbeTarget {
        host: &probe_host,
        path,
        scheme: probe_scheme,
    };
    let health_check_timeout = config
        .init
        .timeouts
        .as_ref()
        .and_then(|t| t.control_plane_component_health_check);
    let container = without_empty_lists(json!({
        "command": command(ETCD, default_arguments(config, &local), &local.extra_args),
        "env": merge_env_vars(&[&local.extra_envs]),
        "image": image(config, &local),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": liveness_probe(probe("/livez")),
        "name": ETCD,
        "ports": probe_port(probe_port_number.into()),
        "readinessProbe": readiness_probe(probe("/readyz")),
        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
        "startupProbe": startup_probe(probe("/readyz"), health_check_timeout),
        // Mounted read-write, in this order (kubeadm does not sort etcd's mounts).
        "volumeMounts": [
            volume_mount("etcd-data", data_dir, false),
            volume_mount("etcd-certs", &certs_dir, false),
        ],
    }));
    let volumes = vec![
        staticpod::host_path_volume("etcd-certs", &certs_dir, Some("DirectoryOrCreate")),
        staticpod::host_path_volume("etcd-data", data_dir, Some("DirectoryOrCreate")),
    ];
    let annotation = (
        "kubeadm.kubernetes.io/etcd.advertise-client-urls",
        client_url(advertise_address),
    );
    Some(staticpod::component_pod(container, volumes, &[annotation]))
}

/// `<repository>/etcd:<tag>`: `etcd.local.imageRepository` or the cluster's, and
/// `etcd.local.imageTag` or the etcd kubeadm pairs with the Kubernetes version.
pub fn image(config: &EffectiveConfig, local: &LocalEtcd) -> String {
    let repository = local
        .image_repository
        .as_deref()
        .or(config.cluster.image_repository.as_deref())
        .filter(|repository| !repository.is_empty())
        .unwrap_or(DEFAULT_IMAGE_REPOSITORY);
    format!("{repository}/{ETCD}:{}", image_tag(config, local))
}

/// The etcd image tag: `etcd.local.imageTag`, or the etcd the Kubernetes minor's kubeadm
/// deploys (`constants.DefaultEtcdVersion` of that release).
pub fn image_tag(config: &EffectiveConfig, local: &LocalEtcd) -> String {
    if let Some(tag) = local.image_tag.as_deref().filter(|tag| !tag.is_empty()) {
        return tag.to_owned();
    }
    Release::of_version(config.kubernetes_version())
        .etcd_image_tag
        .to_owned()
}

fn default_arguments(config: &EffectiveConfig, local: &LocalEtcd) -> Vec<Arg> {
    let certificates_dir = config.certificates_dir();
    let cert = |file: &str| join_path(certificates_dir, file);
    let advertise_address = config.advertise_address();
    let localhost = if is_ipv6(advertise_address) {
        "::1"
    } else {
        "127.0.0.1"
    };
    let node_name = config
        .init
        .node_registration
        .name
        .as_deref()
        .unwrap_or_default();
    let client_url = client_url(advertise_address);
    let peer_url = format!("https://{}", join_host_port(advertise_address, PEER_PORT));
    let mut arguments: Vec<Arg> = [
        ("name", node_name.to_owned()),
        (
            "listen-client-urls",
            format!("{},{client_url}", self::client_url(localhost)),
        ),
        ("advertise-client-urls", client_url.clone()),
        ("listen-peer-urls", peer_url.clone()),
        ("initial-advertise-peer-urls", peer_url.clone()),
        ("data-dir", data_dir(local).to_owned()),
        ("cert-file", cert("etcd/server.crt")),
        ("key-file", cert("etcd/server.key")),
        ("trusted-ca-file", cert("etcd/ca.crt")),
        ("client-cert-auth", "true".to_owned()),
        ("peer-cert-file", cert("etcd/peer.crt")),
        ("peer-key-file", cert("etcd/peer.key")),
        ("peer-trusted-ca-file", cert("etcd/ca.crt")),
        ("peer-client-cert-auth", "true".to_owned()),
        ("snapshot-count", "10000".to_owned()),
        (
            "listen-metrics-urls",
            format!("http://{}", join_host_port(localhost, METRICS_PORT)),
        ),
    ]
    .into_iter()
    .map(|(name, value)| Arg {
        name: name.into(),
        value,
    })
    .collect();
    // etcd 3.6 graduated these from `--experimental-*` flags; kubeadm v1.35 picks by the image
    // tag, v1.36 dropped the experimental ones whatever the tag.
    let graduated = Release::of_version(config.kubernetes_version()).minor >= 36
        || parse_semver(&image_tag(config, local)).is_some_and(|v| v.at_least(3, 6, 0));
    let version_specific = if graduated {
        [
            ("feature-gates", "InitialCorruptCheck=true"),
            ("watch-progress-notify-interval", "5s"),
        ]
    } else {
        [
            ("experimental-initial-corrupt-check", "true"),
            ("experimental-watch-progress-notify-interval", "5s"),
        ]
    };
    arguments.extend(version_specific.map(|(name, value)| Arg {
        name: name.into(),
        value: value.into(),
    }));
    // A new cluster starts with this node as its only member.
    set_arg(
        &mut arguments,
        "initial-cluster",
        format!("{node_name}={peer_url}"),
    );
    arguments
}

fn client_url(host: &str) -> String {
    format!("https://{}", join_host_port(host, CLIENT_PORT))
}

fn is_ipv6(address: &str) -> bool {
    address.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Where the probes connect, as kubeadm's `GetEtcdProbeEndpoint`: the first of the user's
/// `listen-metrics-urls` if set, else plain HTTP on the loopback metrics port.
fn probe_endpoint(local: &LocalEtcd, ipv6: bool) -> (String, u16, Scheme) {
    let localhost = if ipv6 { "::1" } else { "127.0.0.1" };
    let default = (localhost.to_owned(), METRICS_PORT, Scheme::Http);
    let Some(urls) = staticpod::arg_value(&local.extra_args, "listen-metrics-urls") else {
        return default;
    };
    let first = urls.split(',').next().unwrap_or_default();
    let Some((scheme, rest)) = first.split_once("://") else {
        // Go's url.Parse either fails on such a value or finds no host or port in it.
        return default;
    };
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let (host, port) = match host_port.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, after)) => (host, after.strip_prefix(':')),
            None => return default,
        },
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    let port = match port {
        None | Some("") => METRICS_PORT,
        Some(port) if !port.bytes().all(|b| b.is_ascii_digit()) => return default,
        // kubeadm keeps the default port when the value is not a valid port number.
        Some(port) => port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .unwrap_or(METRICS_PORT),
    };
    let host = if host.is_empty() { localhost } else { host };
    (host.to_owned(), port, scheme)
}

/// A semantic version as `k8s.io/apimachinery`'s `ParseSemantic` reads it (`v` prefix
/// allowed, exactly three components, optional pre-release and build metadata).
struct SemanticVersion {
    major: u64,
    minor: u64,
    patch: u64,
    pre_release: bool,
}

impl SemanticVersion {
    fn at_least(&self, major: u64, minor: u64, patch: u64) -> bool {
        let core = (self.major, self.minor, self.patch);
        // A pre-release sorts before its release.
        core > (major, minor, patch) || (core == (major, minor, patch) && !self.pre_release)
    }
}

fn parse_semver(text: &str) -> Option<SemanticVersion> {
    let text = text.trim_start();
    let text = text.strip_prefix('v').unwrap_or(text);
    let numbers_end = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (numbers, extra) = text.split_at(numbers_end);
    let components: Vec<&str> = numbers.split('.').collect();
    let [major, minor, patch] = components[..] else {
        return None;
    };
    let number = |component: &str| -> Option<u64> {
        if component.is_empty() || (component.starts_with('0') && component != "0") {
            return None;
        }
        component.parse().ok()
    };
    let extra = extra.trim_end();
    let (pre_release, build) = match extra.split_once('+') {
        Some((pre, build)) => (pre, Some(build)),
        None => (extra, None),
    };
    let identifiers_ok = |text: &str| {
        text.split('.')
            .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let pre_release = match pre_release {
        "" => None,
        pre => Some(pre.strip_prefix('-')?),
    };
    if pre_release.is_some_and(|pre| !identifiers_ok(pre))
        || build.is_some_and(|build| !identifiers_ok(build))
    {
        return None;
    }
    Some(SemanticVersion {
        major: number(major)?,
        minor: number(minor)?,
        patch: number(patch)?,
        pre_release: pre_release.is_some(),
    })
}

#[cfg(test)]
mod tests;
