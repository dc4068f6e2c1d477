//! The control-plane static Pods, as kubeadm's `phases/controlplane/manifests.go` and
//! `volumes.go` build them.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::join_host_port;
use kubeforge_api::release::Release;
use kubeforge_api::v1beta4::{Arg, EnvVar, ExternalEtcd, HostPathMount};
use kubeforge_sdk::staticpod::{
    self, HostPathMounts, ProbeTarget, Scheme, arg_value, command, cpu_request, join_path,
    liveness_probe, merge_env_vars, probe_address, probe_port, readiness_probe, set_arg,
    startup_probe, without_empty_lists,
};
use kubeforge_sdk::yaml;
use serde_json::{Value, json};

/// Directories that `/etc/ssl/certs` may link into on some distributions; each one that
/// exists on the node is also mounted into the API server and controller-manager. In
/// kubeadm's order.
pub const CA_CERT_EXTRA_DIRS: [&str; 5] = [
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/etc/ca-certificates",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
];

const CA_CERTS_DIR: &str = "/etc/ssl/certs";
const DEFAULT_FLEXVOLUME_DIR: &str = "/usr/libexec/kubernetes/kubelet-plugins/volume/exec";
const CONTROLLER_MANAGER_KUBECONFIG: &str = "/etc/kubernetes/controller-manager.conf";
const SCHEDULER_KUBECONFIG: &str = "/etc/kubernetes/scheduler.conf";
const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";
const DEFAULT_BIND_PORT: i32 = 6443;
const CONTROLLER_MANAGER_PORT: i64 = 10257;
const SCHEDULER_PORT: i64 = 10259;
const ETCD_CLIENT_PORT: u16 = 2379;
const DIRECTORY_OR_CREATE: Option<&str> = Some("DirectoryOrCreate");
const FILE_OR_CREATE: Option<&str> = Some("FileOrCreate");

/// The authorization modes kube-apiserver knows; kubeadm warns about and drops others.
const AUTHORIZATION_MODES: [&str; 6] = [
    "Node",
    "RBAC",
    "Webhook",
    "ABAC",
    "AlwaysAllow",
    "AlwaysDeny",
];
const DEFAULT_AUTHORIZATION_MODE: &str = "Node,RBAC";

/// A control-plane component and its sub-phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    ApiServer,
    ControllerManager,
    Scheduler,
}

impl Component {
    pub const ALL: [Component; 3] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::Scheduler,
    ];

    /// The component's name: its container, Pod, image and manifest file are named after it.
    pub fn name(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
            Component::Scheduler => "kube-scheduler",
        }
    }

    /// The sub-phase of `control-plane` that writes this component's manifest.
    pub fn sub_phase(self) -> &'static str {
        match self {
            Component::ApiServer => "apiserver",
            Component::ControllerManager => "controller-manager",
            Component::Scheduler => "scheduler",
        }
    }

    /// kubeadm's help text for the sub-phase.
    pub fn description(self) -> String {
        format!("Generates the {} static Pod manifest", self.name())
    }
}

/// What kubeadm looks up on the node (or in its own environment) while building manifests.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeFacts {
    /// Those of [`CA_CERT_EXTRA_DIRS`] that exist.
    pub existing_ca_cert_dirs: Vec<String>,
    /// The `*_proxy` variables of kubeadm's environment, passed on to the containers.
    pub proxy_env: Vec<EnvVar>,
    /// Whether the cluster CA's certificate is present without its key (kubeadm's external CA
    /// mode): the controller-manager then must not sign certificates.
    pub external_ca: bool,
}

/// The manifest kubeadm writes to `<component>.yaml`.
pub fn manifest(config: &EffectiveConfig, facts: &NodeFacts, component: Component) -> String {
    yaml::to_string(&pod(config, facts, component))
}

/// The component's static Pod.
pub fn pod(config: &EffectiveConfig, facts: &NodeFacts, component: Component) -> Value {
    let cluster = &config.cluster;
    let mounts = host_path_mounts(config, facts, component);
    let health_check_timeout = config
        .init
        .timeouts
        .as_ref()
        .and_then(|t| t.control_plane_component_health_check);
    let (extra_args, extra_envs) = match component {
        Component::ApiServer => (
            &cluster.api_server.extra_args,
            &cluster.api_server.extra_envs,
        ),
        Component::ControllerManager => (
            &cluster.controller_manager.extra_args,
            &cluster.controller_manager.extra_envs,
        ),
        Component::Scheduler => (&cluster.scheduler.extra_args, &cluster.scheduler.extra_envs),
    };
    let (defaults, probe_host, port, cpu) = match component {
        Component::ApiServer => {
            let advertise_address = config.advertise_address();
            let host = if advertise_address.is_empty() {
                "127.0.0.1"
            } else {
                probe_address(advertise_address)
            };
            (
                apiserver_arguments(config),
                host,
                i64::from(bind_port(config)),
                "250m",
            )
        }
        Component::ControllerManager => {
            let host = arg_value(extra_args, "bind-address").map_or("127.0.0.1", probe_address);
            (
                controller_manager_arguments(config, facts),
                host,
                CONTROLLER_MANAGER_PORT,
                "200m",
            )
        }
        Component::Scheduler => {
            let host = arg_value(extra_args, "bind-address").map_or("127.0.0.1", probe_address);
            (scheduler_arguments(), host, SCHEDULER_PORT, "100m")
        }
    };
    let probe = |path| ProbeTarget {
        host: probe_host,
        path,
        scheme: Scheme::Https,
    };
    // kubeadm checks the controller-manager's liveness and startup on /healthz and does not
    // probe its readiness; the others on /livez and /readyz.
    let health_path = match component {
        Component::ControllerManager => "/healthz",
        _ => "/livez",
    };
    let mut container = without_empty_lists(json!({
        "command": command(component.name(), defaults, extra_args),
        "env": merge_env_vars(&[&facts.proxy_env, extra_envs]),
        "image": image(config, component),
        "imagePullPolicy": "IfNotPresent",
        "livenessProbe": liveness_probe(probe(health_path)),
        "name": component.name(),
        "ports": probe_port(port),
        "resources": cpu_request(cpu),
        "startupProbe": startup_probe(probe(health_path), health_check_timeout),
        "volumeMounts": mounts.volume_mounts(),
    }));
    if component != Component::ControllerManager {
        container["readinessProbe"] = readiness_probe(probe("/readyz"));
    }
    let annotations = match component {
        Component::ApiServer => vec![(
            "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint",
            apiserver_endpoint(config),
        )],
        _ => vec![],
    };
    staticpod::component_pod(container, mounts.volumes(), &annotations)
}

/// `<imageRepository>/<component>:<kubernetesVersion>`, the version made a valid tag.
pub fn image(config: &EffectiveConfig, component: Component) -> String {
    let repository = config
        .cluster
        .image_repository
        .as_deref()
        .filter(|repository| !repository.is_empty())
        .unwrap_or(DEFAULT_IMAGE_REPOSITORY);
    let version = config
        .cluster
        .kubernetes_version
        .as_deref()
        .unwrap_or_default();
    // kubeadm replaces every character a tag may not hold (`+` of a build, say) with `_`.
    let tag: String = version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{repository}/{}:{tag}", component.name())
}

/// kubeadm's warnings about `apiServer.extraArgs` `authorization-mode`: unknown modes are
/// ignored by kubeadm's check, and a set other than `Node,RBAC` is worth a word.
pub fn apiserver_warnings(config: &EffectiveConfig) -> Vec<String> {
    let extra_args = &config.cluster.api_server.extra_args;
    // With structured authorization configuration kubeadm does not look at the modes.
    if arg_value(extra_args, "authorization-config").is_some() {
        return vec![];
    }
    let Some(requested) =
        arg_value(extra_args, "authorization-mode").filter(|modes| !modes.is_empty())
    else {
        return vec![];
    };
    let mut warnings = Vec::new();
    let mut modes = Vec::new();
    for mode in requested.split(',') {
        if AUTHORIZATION_MODES.contains(&mode) {
            modes.push(mode);
        } else {
            warnings.push(format!(
                "ignoring unknown kube-apiserver authorization-mode {mode:?}"
            ));
        }
    }
    let modes = modes.join(",");
    if !modes.is_empty() && modes != DEFAULT_AUTHORIZATION_MODE {
        warnings.push(format!(
            "the default kube-apiserver authorization-mode is {DEFAULT_AUTHORIZATION_MODE:?}; using {modes:?}"
        ));
    }
    warnings
}

fn apiserver_arguments(config: &EffectiveConfig) -> Vec<Arg> {
    let cluster = &config.cluster;
    let pki = |file: &str| join_path(config.certificates_dir(), file);
    let networking = &cluster.networking;
    let dns_domain = networking.dns_domain.as_deref().unwrap_or_default();
    let mut arguments = arguments([
        ("advertise-address", config.advertise_address().to_owned()),
        ("enable-admission-plugins", "NodeRestriction".into()),
        (
            "service-cluster-ip-range",
            networking.service_subnet.clone().unwrap_or_default(),
        ),
        ("service-account-key-file", pki("sa.pub")),
        ("service-account-signing-key-file", pki("sa.key")),
        (
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{dns_domain}"),
        ),
        ("client-ca-file", pki("ca.crt")),
        ("tls-cert-file", pki("apiserver.crt")),
        ("tls-private-key-file", pki("apiserver.key")),
        (
            "kubelet-client-certificate",
            pki("apiserver-kubelet-client.crt"),
        ),
        ("kubelet-client-key", pki("apiserver-kubelet-client.key")),
        ("enable-bootstrap-token-auth", "true".into()),
        ("secure-port", bind_port(config).to_string()),
        ("allow-privileged", "true".into()),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname".into(),
        ),
        // The front proxy (aggregation layer), always configured as kubeadm always issues its
        // client certificate.
        ("requestheader-username-headers", "X-Remote-User".into()),
        ("requestheader-group-headers", "X-Remote-Group".into()),
        (
            "requestheader-extra-headers-prefix",
            "X-Remote-Extra-".into(),
        ),
        ("requestheader-client-ca-file", pki("front-proxy-ca.crt")),
        ("requestheader-allowed-names", "front-proxy-client".into()),
        ("proxy-client-cert-file", pki("front-proxy-client.crt")),
        ("proxy-client-key-file", pki("front-proxy-client.key")),
    ]);
    match &cluster.etcd.external {
        Some(external) => {
            set_arg(&mut arguments, "etcd-servers", external.endpoints.join(","));
            if !external.ca_file.is_empty() {
                set_arg(&mut arguments, "etcd-cafile", external.ca_file.as_str());
            }
            if !external.cert_file.is_empty() && !external.key_file.is_empty() {
                set_arg(&mut arguments, "etcd-certfile", external.cert_file.as_str());
                set_arg(&mut arguments, "etcd-keyfile", external.key_file.as_str());
            }
        }
        None => {
            // The local etcd listens on the loopback address of the advertise address's family.
            let loopback = if is_ipv6(config.advertise_address()) {
                "::1"
            } else {
                "127.0.0.1"
            };
            let local_advertised = cluster
                .etcd
                .local
                .as_ref()
                .and_then(|local| arg_value(&local.extra_args, "advertise-client-urls"));
            let servers = local_advertised.map_or_else(
                || format!("https://{}", join_host_port(loopback, ETCD_CLIENT_PORT)),
                str::to_owned,
            );
            set_arg(&mut arguments, "etcd-servers", servers);
            set_arg(&mut arguments, "etcd-cafile", pki("etcd/ca.crt"));
            set_arg(
                &mut arguments,
                "etcd-certfile",
                pki("apiserver-etcd-client.crt"),
            );
            set_arg(
                &mut arguments,
                "etcd-keyfile",
                pki("apiserver-etcd-client.key"),
            );
        }
    }
    // Structured authorization configuration replaces the mode flag.
    if arg_value(&cluster.api_server.extra_args, "authorization-config").is_none() {
        set_arg(
            &mut arguments,
            "authorization-mode",
            DEFAULT_AUTHORIZATION_MODE,
        );
    }
    arguments
}

fn controller_manager_arguments(config: &EffectiveConfig, facts: &NodeFacts) -> Vec<Arg> {
    let cluster = &config.cluster;
    let pki = |file: &str| join_path(config.certificates_dir(), file);
    let mut arguments = arguments([
        ("bind-address", "127.0.0.1".into()),
        ("leader-elect", "true".into()),
        ("kubeconfig", CONTROLLER_MANAGER_KUBECONFIG.into()),
        (
            "authentication-kubeconfig",
            CONTROLLER_MANAGER_KUBECONFIG.into(),
        ),
        (
            "authorization-kubeconfig",
            CONTROLLER_MANAGER_KUBECONFIG.into(),
        ),
        ("client-ca-file", pki("ca.crt")),
        ("requestheader-client-ca-file", pki("front-proxy-ca.crt")),
        ("root-ca-file", pki("ca.crt")),
        ("service-account-private-key-file", pki("sa.key")),
        ("cluster-signing-cert-file", pki("ca.crt")),
        ("cluster-signing-key-file", pki("ca.key")),
        ("use-service-account-credentials", "true".into()),
        ("controllers", "*,bootstrapsigner,tokencleaner".into()),
    ]);
    if facts.external_ca {
        // Empty paths keep the CSR signing controller from starting without the CA key.
        set_arg(&mut arguments, "cluster-signing-key-file", "");
        set_arg(&mut arguments, "cluster-signing-cert-file", "");
    }
    let networking = &cluster.networking;
    if let Some(pod_subnet) = networking
        .pod_subnet
        .as_deref()
        .filter(|subnet| !subnet.is_empty())
    {
        // The controller-manager hands each node a slice of the Pod network.
        set_arg(&mut arguments, "allocate-node-cidrs", "true");
        set_arg(&mut arguments, "cluster-cidr", pod_subnet);
        if let Some(service_subnet) = networking
            .service_subnet
            .as_deref()
            .filter(|subnet| !subnet.is_empty())
        {
            set_arg(&mut arguments, "service-cluster-ip-range", service_subnet);
        }
    }
    if let Some(cluster_name) = cluster
        .cluster_name
        .as_deref()
        .filter(|name| !name.is_empty())
    {
        set_arg(&mut arguments, "cluster-name", cluster_name);
    }
    arguments
}

fn scheduler_arguments() -> Vec<Arg> {
    arguments([
        ("bind-address", "127.0.0.1".into()),
        ("leader-elect", "true".into()),
        ("kubeconfig", SCHEDULER_KUBECONFIG.into()),
        ("authentication-kubeconfig", SCHEDULER_KUBECONFIG.into()),
        ("authorization-kubeconfig", SCHEDULER_KUBECONFIG.into()),
    ])
}

fn arguments<const N: usize>(pairs: [(&str, String); N]) -> Vec<Arg> {
    pairs
        .into_iter()
        .map(|(name, value)| Arg {
            name: name.into(),
            value,
        })
        .collect()
}

/// The hostPath volumes of one component (kubeadm's `getHostPathVolumesForTheControlPlane`).
fn host_path_mounts(
    config: &EffectiveConfig,
    facts: &NodeFacts,
    component: Component,
) -> HostPathMounts {
    let cluster = &config.cluster;
    let certificates_dir = config.certificates_dir();
    let mut mounts = HostPathMounts::default();
    let extra_volumes: &[HostPathMount] = match component {
        Component::ApiServer => {
            mounts.add(
                "k8s-certs",
                certificates_dir,
                certificates_dir,
                true,
                DIRECTORY_OR_CREATE,
            );
            mounts.add(
                "ca-certs",
                CA_CERTS_DIR,
                CA_CERTS_DIR,
                true,
                DIRECTORY_OR_CREATE,
            );
            if let Some(external) = &cluster.etcd.external {
                for (index, dir) in external_etcd_cert_dirs(external, certificates_dir)
                    .iter()
                    .enumerate()
                {
                    mounts.add(
                        &format!("etcd-certs-{index}"),
                        dir,
                        dir,
                        true,
                        DIRECTORY_OR_CREATE,
                    );
                }
            }
            &cluster.api_server.extra_volumes
        }
        Component::ControllerManager => {
            mounts.add(
                "k8s-certs",
                certificates_dir,
                certificates_dir,
                true,
                DIRECTORY_OR_CREATE,
            );
            mounts.add(
                "ca-certs",
                CA_CERTS_DIR,
                CA_CERTS_DIR,
                true,
                DIRECTORY_OR_CREATE,
            );
            let kubeconfig = CONTROLLER_MANAGER_KUBECONFIG;
            mounts.add("kubeconfig", kubeconfig, kubeconfig, true, FILE_OR_CREATE);
            // kubeadm mounts the FlexVolume directory up to v1.35 (phases/controlplane/
            // volumes.go; v1.36 dropped it). Read-write: third-party FlexVolume drivers talk to
            // their backends through sockets in it.
            if Release::of_version(config.kubernetes_version()).minor <= 35 {
                let flexvolume_dir = arg_value(
                    &cluster.controller_manager.extra_args,
                    "flex-volume-plugin-dir",
                )
                .unwrap_or(DEFAULT_FLEXVOLUME_DIR);
                mounts.add(
                    "flexvolume-dir",
                    flexvolume_dir,
                    flexvolume_dir,
                    false,
                    DIRECTORY_OR_CREATE,
                );
            }
            &cluster.controller_manager.extra_volumes
        }
        Component::Scheduler => {
            let kubeconfig = SCHEDULER_KUBECONFIG;
            mounts.add("kubeconfig", kubeconfig, kubeconfig, true, FILE_OR_CREATE);
            &cluster.scheduler.extra_volumes
        }
    };
    if component != Component::Scheduler {
        for dir in CA_CERT_EXTRA_DIRS
            .iter()
            .filter(|dir| facts.existing_ca_cert_dirs.iter().any(|d| d == *dir))
        {
            // `/etc/pki/ca-trust` is mounted as `etc-pki-ca-trust`.
            let name = dir[1..].replace('/', "-");
            mounts.add(&name, dir, dir, true, DIRECTORY_OR_CREATE);
        }
    }
    // The user's volumes come last, so one may replace a default volume of the same name.
    for volume in extra_volumes {
        let path_type = volume.path_type.as_deref().unwrap_or_default();
        mounts.add(
            &volume.name,
            &volume.host_path,
            &volume.mount_path,
            volume.read_only,
            Some(path_type),
        );
    }
    mounts
}

/// The directories of the external etcd client certificate, key and CA that the API server
/// needs mounted (kubeadm's `getEtcdCertVolumes`): not those already mounted (the certificates
/// dir, `/etc/ssl/certs`, the CA dirs — by plain string prefix, as kubeadm compares) and not a
/// directory below another one in the list. Sorted.
pub fn external_etcd_cert_dirs(external: &ExternalEtcd, certificates_dir: &str) -> Vec<String> {
    let mut dirs: Vec<String> = Vec::new();
    for file in [&external.ca_file, &external.cert_file, &external.key_file] {
        let dir = go_dir(file);
        let already_mounted = dir == "."
            || CA_CERT_EXTRA_DIRS
                .iter()
                .any(|mounted| dir.starts_with(mounted))
            || dir.starts_with(CA_CERTS_DIR)
            || dir.starts_with(certificates_dir);
        if already_mounted {
            continue;
        }
        // A parent directory replaces its children already listed; a child of a listed
        // directory is not added.
        let mut covered = false;
        dirs.retain(|existing| {
            if existing.starts_with(&dir) {
                false
            } else {
                covered |= dir.starts_with(existing.as_str());
                true
            }
        });
        if !covered {
            dirs.push(dir);
        }
        dirs.sort();
    }
    dirs
}

/// Go's `filepath.Dir`: everything before the last `/`, cleaned; `.` when there is none.
fn go_dir(path: &str) -> String {
    match path.rfind('/') {
        Some(0) => "/".to_owned(),
        Some(at) => join_path(&path[..at], ""),
        None => ".".to_owned(),
    }
}

/// `<advertiseAddress>:<bindPort>`, IPv6 addresses bracketed.
fn apiserver_endpoint(config: &EffectiveConfig) -> String {
    let address = config.advertise_address();
    let port = bind_port(config);
    if address.contains(':') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

fn bind_port(config: &EffectiveConfig) -> i32 {
    config
        .init
        .local_api_endpoint
        .bind_port
        .filter(|&port| port != 0)
        .unwrap_or(DEFAULT_BIND_PORT)
}

fn is_ipv6(address: &str) -> bool {
    address.parse::<std::net::Ipv6Addr>().is_ok()
}

#[cfg(test)]
mod tests;
