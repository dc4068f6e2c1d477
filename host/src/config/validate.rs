//! kubeadm's validation of a defaulted Init/ClusterConfiguration. Every rule runs and every
//! failure is collected, each naming its field path the way kubeadm's messages do.

use std::net::IpAddr;

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::{Cidr, Host, is_dns1123_subdomain, parse_cidr_list};
use kubeforge_api::release::{RELEASES, Release};
use kubeforge_api::v1beta4::{
    ApiEndpoint, Arg, BootstrapToken, ClusterConfiguration, Discovery, EnvVar, HostPathMount,
    InitConfiguration, JoinConfiguration, NodeRegistrationOptions, ResetConfiguration,
    UpgradeConfiguration,
};

use super::defaults::{DEFAULT_KUBERNETES_VERSION, KubernetesVersion};
use super::error::{FieldError, JsonValue};

/// kubeadm's `MinimumAddressesInServiceSubnet`: the DNS service takes the 10th address.
const MIN_SERVICE_SUBNET_ADDRESSES: u128 = 10;
/// kubeadm's `MinimumAddressesInPodSubnet`.
const MIN_POD_SUBNET_ADDRESSES: u128 = 14;
/// kubeadm's `MaximumBitsForServiceSubnet` (a /12 for IPv4, a /108 for IPv6), as the API
/// server enforces.
const MAX_SERVICE_SUBNET_HOST_BITS: u8 = 20;
/// kubeadm's `PodSubnetNodeMaskMaxDiff`.
const POD_SUBNET_NODE_MASK_MAX_DIFF: u8 = 16;
/// Size of the AES-256 key behind `certificateKey`, in bytes.
const CERTIFICATE_KEY_BYTES: usize = 32;
/// The feature gates each release's kubeadm knows (its `features.InitFeatureGates`), by minor;
/// validation refuses any other, as that kubeadm does.
const FEATURE_GATES: [(u64, &[&str]); 3] = [
    (
        35,
        &[
            "ControlPlaneKubeletLocalMode",
            "NodeLocalCRISocket",
            "PublicKeysECDSA",
            "RootlessControlPlane",
        ],
    ),
    (
        36,
        &[
            "NodeLocalCRISocket",
            "PublicKeysECDSA",
            "RootlessControlPlane",
        ],
    ),
    (37, &["RootlessControlPlane"]),
];
/// kubeadm's `kubeadm.UnmountFlag*`: the flags `reset` may unmount with.
const UNMOUNT_FLAGS: [&str; 4] = ["MNT_FORCE", "MNT_DETACH", "MNT_EXPIRE", "UMOUNT_NOFOLLOW"];
const TAINT_EFFECTS: [&str; 3] = ["NoExecute", "NoSchedule", "PreferNoSchedule"];
const HOST_PATH_TYPES: [&str; 8] = [
    "",
    "DirectoryOrCreate",
    "Directory",
    "FileOrCreate",
    "File",
    "Socket",
    "CharDevice",
    "BlockDevice",
];
const DNS1123_SUBDOMAIN_HELP: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
    alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
    (e.g. 'example.com', regex used for validation is \
    '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const PATH_NOT_ABSOLUTE: &str = "path is not absolute";

/// Validates a defaulted configuration for the release its kubernetesVersion names (the
/// nearest end of the window outside it; that version is refused anyway); an empty list means
/// it is valid.
pub(super) fn validate(config: &EffectiveConfig) -> Vec<FieldError> {
    let version = config
        .cluster
        .kubernetes_version
        .as_deref()
        .unwrap_or_default();
    validate_for(config, Release::of_version(version))
}

/// Validates a defaulted configuration as the kubeadm of `release` does.
pub(super) fn validate_for(config: &EffectiveConfig, release: Release) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_init(&config.init, &mut errors);
    validate_cluster(&config.cluster, release, &mut errors);
    errors
}

fn validate_init(init: &InitConfiguration, errors: &mut Vec<FieldError>) {
    validate_node_registration(&init.node_registration, errors);
    for (index, token) in init.bootstrap_tokens.iter().enumerate() {
        validate_bootstrap_token(token, &format!("bootstrapTokens.{index}"), errors);
    }

    validate_api_endpoint(&init.local_api_endpoint, "localAPIEndpoint", errors);
    if let Some(key) = init.certificate_key.as_deref().filter(|k| !k.is_empty()) {
        validate_certificate_key(key, "certificateKey", errors);
    }

    if let Some(timeouts) = &init.timeouts {
        for (name, value) in [
            (
                "controlPlaneComponentHealthCheck",
                timeouts.control_plane_component_health_check,
            ),
            ("kubeletHealthCheck", timeouts.kubelet_health_check),
            ("kubernetesAPICall", timeouts.kubernetes_api_call),
            ("etcdAPICall", timeouts.etcd_api_call),
            ("tlsBootstrap", timeouts.tls_bootstrap),
            ("discovery", timeouts.discovery),
            ("upgradeManifests", timeouts.upgrade_manifests),
        ] {
            if let Some(value) = value.filter(|v| !v.is_positive()) {
                errors.push(FieldError::invalid(
                    format!("timeouts.{name}"),
                    value.to_string(),
                    "must be a positive duration",
                ));
            }
        }
    }

    if let Some(directory) = init.patches.as_ref().and_then(|p| p.directory.as_deref())
        && directory.is_empty()
    {
        errors.push(FieldError::required(
            "patches.directory",
            "set the directory holding the patch files, or remove `patches`",
        ));
    }
}

fn validate_node_registration(
    registration: &NodeRegistrationOptions,
    errors: &mut Vec<FieldError>,
) {
    match registration.name.as_deref().filter(|name| !name.is_empty()) {
        None => errors.push(FieldError::required(
            "nodeRegistration",
            "--node-name or .nodeRegistration.name in the config file is a required value. It \
             seems like this value couldn't be automatically detected in your environment, \
             please specify the desired value using the CLI or config file.",
        )),
        Some(name) => {
            for problem in dns1123_subdomain_problems(name) {
                errors.push(FieldError::invalid("nodeRegistration.name", name, problem));
            }
        }
    }

    validate_cri_socket(
        registration.cri_socket.as_deref().unwrap_or_default(),
        "nodeRegistration.criSocket",
        errors,
    );

    validate_extra_args(
        &registration.kubelet_extra_args,
        "nodeRegistration.kubeletExtraArgs",
        errors,
    );

    validate_image_pull_policy(
        registration
            .image_pull_policy
            .as_deref()
            .unwrap_or_default(),
        "nodeRegistration.imagePullPolicy",
        errors,
    );

    for (index, taint) in registration.taints.iter().flatten().enumerate() {
        let path = format!("nodeRegistration.taints[{index}]");
        if taint.key.is_empty() {
            errors.push(FieldError::required(
                format!("{path}.key"),
                "a taint needs a key",
            ));
        }
        if !TAINT_EFFECTS.contains(&taint.effect.as_str()) {
            errors.push(FieldError::invalid(
                format!("{path}.effect"),
                &taint.effect,
                format!("supported values: {}", quoted_list(&TAINT_EFFECTS)),
            ));
        }
    }

    let ignored = &registration.ignore_preflight_errors;
    if ignored.len() > 1
        && ignored
            .iter()
            .any(|check| check.eq_ignore_ascii_case("all"))
    {
        let mut lowered: Vec<String> = ignored.iter().map(|c| c.to_lowercase()).collect();
        lowered.sort();
        lowered.dedup();
        if lowered.len() > 1 {
            errors.push(FieldError::invalid(
                "ignore-preflight-errors",
                lowered.join(","),
                "don't specify individual checks if 'all' is used",
            ));
        }
    }
}

fn validate_cri_socket(socket: &str, path: &str, errors: &mut Vec<FieldError>) {
    if socket.is_empty() {
        errors.push(FieldError::invalid(path, socket, "empty CRI socket"));
        return;
    }
    let scheme = socket.split_once("://").map_or("", |(scheme, _)| scheme);
    if scheme != "unix" {
        errors.push(FieldError::invalid(
            path,
            socket,
            format!("only URL scheme \"unix\" is supported, got {scheme:?}"),
        ));
    }
}

fn validate_image_pull_policy(policy: &str, path: &str, errors: &mut Vec<FieldError>) {
    if !matches!(policy, "" | "Always" | "IfNotPresent" | "Never") {
        errors.push(FieldError::invalid(path, policy, "invalid pull policy"));
    }
}

/// Token syntax, usages and groups as `kubeadm token create` checks them.
fn validate_bootstrap_token(token: &BootstrapToken, path: &str, errors: &mut Vec<FieldError>) {
    let text = token.token.as_deref().unwrap_or_default();
    if !is_bootstrap_token(text) {
        errors.push(FieldError::invalid(
            format!("{path}.token"),
            text,
            "the bootstrap token is invalid",
        ));
    }
    let unknown: Vec<&str> = token
        .usages
        .iter()
        .map(String::as_str)
        .filter(|usage| !matches!(*usage, "signing" | "authentication"))
        .collect();
    if !unknown.is_empty() {
        errors.push(FieldError::invalid(
            format!("{path}.usages"),
            JsonValue(&token.usages),
            format!(
                "invalid bootstrap token usage string: {}, valid usage options: signing,authentication",
                unknown.join(",")
            ),
        ));
    }
    if !token.groups.is_empty() && !token.usages.iter().any(|u| u == "authentication") {
        errors.push(FieldError::invalid(
            format!("{path}.groups"),
            JsonValue(&token.groups),
            "token groups cannot be specified unless --usages includes \"authentication\"",
        ));
    }
    for group in &token.groups {
        if !is_bootstrap_group(group) {
            errors.push(FieldError::invalid(
                format!("{path}.groups"),
                JsonValue(&token.groups),
                format!(
                    "bootstrap group {group:?} is invalid (must match \
                     ^system:bootstrappers:[a-z0-9:-]{{0,255}}[a-z0-9]$)"
                ),
            ));
        }
    }
    if token.ttl.is_some() && token.expires.is_some() {
        errors.push(FieldError::invalid(
            path,
            "",
            "the BootstrapToken .TTL and .Expires fields are mutually exclusive",
        ));
    }
    if let Some(ttl) = token.ttl.filter(|ttl| ttl.as_nanos() < 0) {
        errors.push(FieldError::invalid(
            format!("{path}.ttl"),
            ttl.to_string(),
            "must not be negative (0 means the token never expires)",
        ));
    }
}

/// `[a-z0-9]{6}.[a-z0-9]{16}`.
pub(super) fn is_bootstrap_token(token: &str) -> bool {
    let part = |text: &str, len: usize| {
        text.len() == len
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(token.split_once('.'), Some((id, secret)) if part(id, 6) && part(secret, 16))
}

/// `^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$`.
fn is_bootstrap_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix("system:bootstrappers:") else {
        return false;
    };
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match rest.as_bytes().split_last() {
        Some((&last, body)) => {
            allowed(last)
                && body.len() <= 255
                && body.iter().all(|&b| allowed(b) || b == b':' || b == b'-')
        }
        None => false,
    }
}

fn validate_api_endpoint(endpoint: &ApiEndpoint, path: &str, errors: &mut Vec<FieldError>) {
    let address = endpoint.advertise_address.as_deref().unwrap_or_default();
    if address.parse::<IpAddr>().is_err() {
        errors.push(FieldError::invalid(
            format!("{path}.advertiseAddress"),
            address,
            "ip address is not valid",
        ));
    }
    let port = endpoint.bind_port.unwrap_or_default();
    if !(1..=65535).contains(&port) {
        errors.push(FieldError::invalid(
            format!("{path}.bindPort"),
            port,
            "port number is not valid",
        ));
    }
}

fn validate_certificate_key(key: &str, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(bad) = key.chars().find(|c| !c.is_ascii_hexdigit()) {
        errors.push(FieldError::invalid(
            path,
            key,
            format!("certificate key decoding error: invalid hex character {bad:?}"),
        ));
    } else if !key.len().is_multiple_of(2) {
        errors.push(FieldError::invalid(
            path,
            key,
            "certificate key decoding error: odd length hex string",
        ));
    } else if key.len() / 2 != CERTIFICATE_KEY_BYTES {
        errors.push(FieldError::invalid(
            path,
            key,
            format!(
                "invalid certificate key size {}, the key must be an AES key of size {CERTIFICATE_KEY_BYTES}",
                key.len() / 2
            ),
        ));
    }
}

fn validate_cluster(
    cluster: &ClusterConfiguration,
    release: Release,
    errors: &mut Vec<FieldError>,
) {
    if let Some(repository) = cluster
        .dns
        .image_repository
        .as_deref()
        .filter(|r| !r.is_empty())
    {
        validate_image_repository(repository, "dns.imageRepository", errors);
    }
    validate_networking(cluster, errors);

    let api_server = &cluster.api_server;
    validate_cert_sans(&api_server.cert_sans, "apiServer.certSANs", errors);
    validate_extra_args(&api_server.extra_args, "apiServer.extraArgs", errors);
    validate_extra_envs(&api_server.extra_envs, "apiServer.extraEnvs", errors);
    validate_extra_volumes(&api_server.extra_volumes, "apiServer.extraVolumes", errors);
    for (name, component) in [
        ("controllerManager", &cluster.controller_manager),
        ("scheduler", &cluster.scheduler),
    ] {
        validate_extra_args(&component.extra_args, &format!("{name}.extraArgs"), errors);
        validate_extra_envs(&component.extra_envs, &format!("{name}.extraEnvs"), errors);
        validate_extra_volumes(
            &component.extra_volumes,
            &format!("{name}.extraVolumes"),
            errors,
        );
    }

    validate_absolute_path(
        cluster.certificates_dir.as_deref().unwrap_or_default(),
        "certificatesDir",
        errors,
    );

    let known_gates = FEATURE_GATES
        .iter()
        .find(|(minor, _)| *minor == release.minor)
        .map_or(&[][..], |(_, gates)| gates);
    for gate in cluster.feature_gates.keys() {
        if !known_gates.contains(&gate.as_str()) {
            errors.push(FieldError::invalid(
                "featureGates",
                JsonValue(&cluster.feature_gates),
                format!("{gate} is not a valid feature name."),
            ));
        }
    }

    if let Some(endpoint) = cluster
        .control_plane_endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
        && parse_host_port(endpoint).is_none()
    {
        errors.push(FieldError::invalid(
            "controlPlaneEndpoint",
            endpoint,
            "endpoint is not valid",
        ));
    }

    validate_image_repository(
        cluster.image_repository.as_deref().unwrap_or_default(),
        "imageRepository",
        errors,
    );
    validate_etcd(cluster, errors);
    validate_kubernetes_version(
        cluster.kubernetes_version.as_deref().unwrap_or_default(),
        release,
        errors,
    );

    for (name, value) in [
        (
            "certificateValidityPeriod",
            cluster.certificate_validity_period,
        ),
        (
            "caCertificateValidityPeriod",
            cluster.ca_certificate_validity_period,
        ),
    ] {
        if let Some(value) = value.filter(|v| !v.is_positive()) {
            errors.push(FieldError::invalid(
                name,
                value.to_string(),
                "must be a positive duration",
            ));
        }
    }
}

fn validate_networking(cluster: &ClusterConfiguration, errors: &mut Vec<FieldError>) {
    let networking = &cluster.networking;
    let domain = networking.dns_domain.as_deref().unwrap_or_default();
    for problem in dns1123_subdomain_problems(domain) {
        errors.push(FieldError::invalid("networking.dnsDomain", domain, problem));
    }

    if let Some(subnets) = networking
        .service_subnet
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        let path = "networking.serviceSubnet";
        for subnet in validate_subnets(subnets, MIN_SERVICE_SUBNET_ADDRESSES, path, errors) {
            if subnet.host_bits() > MAX_SERVICE_SUBNET_HOST_BITS {
                let width = subnet.host_bits() + subnet.prefix_len();
                errors.push(FieldError::invalid(
                    path,
                    subnet.to_string(),
                    format!(
                        "specified service subnet is too large; for {width}-bit addresses, the mask must be >= {}",
                        width - MAX_SERVICE_SUBNET_HOST_BITS
                    ),
                ));
            }
        }
    }

    if let Some(subnets) = networking.pod_subnet.as_deref().filter(|s| !s.is_empty()) {
        let path = "networking.podSubnet";
        let subnets = validate_subnets(subnets, MIN_POD_SUBNET_ADDRESSES, path, errors);
        let controller_args = &cluster.controller_manager.extra_args;
        // The controller-manager only carves per-node ranges when it allocates node CIDRs.
        if last_arg_value(controller_args, "allocate-node-cidrs") != Some("false") {
            for subnet in subnets {
                validate_node_mask(&subnet, controller_args, path, errors);
            }
        }
    }
}

/// Parses a (dual-stack) subnet list, reporting problems; returns the subnets that parsed.
fn validate_subnets(
    text: &str,
    min_addresses: u128,
    path: &str,
    errors: &mut Vec<FieldError>,
) -> Vec<Cidr> {
    let Ok(subnets) = text
        .split(',')
        .map(Cidr::parse)
        .collect::<Result<Vec<_>, _>>()
    else {
        errors.push(FieldError::invalid(path, text, "couldn't parse subnet"));
        return Vec::new();
    };
    if parse_cidr_list(text).is_err() {
        errors.push(FieldError::invalid(
            path,
            text,
            "expected one (IPv4 or IPv6) CIDR or two CIDRs from each family for dual-stack networking",
        ));
    }
    for subnet in &subnets {
        let count = subnet.address_count();
        if count < min_addresses {
            errors.push(FieldError::invalid(
                path,
                subnet.to_string(),
                format!(
                    "subnet with {count} address(es) is too small, the minimum is {min_addresses}"
                ),
            ));
        }
    }
    subnets
}

fn validate_node_mask(
    subnet: &Cidr,
    controller_args: &[Arg],
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    let (flag, default_mask) = if subnet.is_ipv6() {
        ("node-cidr-mask-size-ipv6", 64)
    } else {
        ("node-cidr-mask-size-ipv4", 24)
    };
    let node_mask = match last_arg_value(controller_args, flag) {
        None => default_mask,
        Some(text) => match text.parse::<u8>() {
            Ok(mask) => mask,
            Err(_) => {
                errors.push(FieldError::invalid(
                    path,
                    subnet.to_string(),
                    format!(
                        "could not parse the value of the kube-controller-manager flag {flag} as an integer: {text:?}"
                    ),
                ));
                return;
            }
        },
    };
    let pod_mask = subnet.prefix_len();
    if pod_mask > node_mask {
        errors.push(FieldError::invalid(
            path,
            subnet.to_string(),
            format!(
                "the size of pod subnet with mask {pod_mask} is smaller than the size of node subnet with mask {node_mask}"
            ),
        ));
    } else if node_mask - pod_mask > POD_SUBNET_NODE_MASK_MAX_DIFF {
        errors.push(FieldError::invalid(
            path,
            subnet.to_string(),
            format!(
                "pod subnet mask ({pod_mask}) and node-mask ({node_mask}) difference is greater than {POD_SUBNET_NODE_MASK_MAX_DIFF}"
            ),
        ));
    }
}

/// The value of the last `name` argument: later arguments override earlier ones.
fn last_arg_value<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .rev()
        .find(|arg| arg.name == name)
        .map(|arg| arg.value.as_str())
}

fn validate_etcd(cluster: &ClusterConfiguration, errors: &mut Vec<FieldError>) {
    let etcd = &cluster.etcd;
    match (&etcd.local, &etcd.external) {
        (None, None) => errors.push(FieldError::invalid(
            "etcd",
            "",
            "either .Etcd.Local or .Etcd.External is required",
        )),
        (Some(_), Some(_)) => errors.push(FieldError::invalid(
            "etcd",
            "",
            ".Etcd.Local and .Etcd.External are mutually exclusive",
        )),
        (Some(local), None) => {
            validate_absolute_path(
                local.data_dir.as_deref().unwrap_or_default(),
                "etcd.local.dataDir",
                errors,
            );
            validate_cert_sans(&local.server_cert_sans, "etcd.local.serverCertSANs", errors);
            validate_cert_sans(&local.peer_cert_sans, "etcd.local.peerCertSANs", errors);
            if let Some(repository) = local.image_repository.as_deref().filter(|r| !r.is_empty()) {
                validate_image_repository(repository, "etcd.local.imageRepository", errors);
            }
            validate_extra_args(&local.extra_args, "etcd.local.extraArgs", errors);
            validate_extra_envs(&local.extra_envs, "etcd.local.extraEnvs", errors);
        }
        (None, Some(external)) => {
            let path = "etcd.external";
            let (ca, cert, key) = (&external.ca_file, &external.cert_file, &external.key_file);
            if cert.is_empty() != key.is_empty() {
                errors.push(FieldError::invalid(
                    path,
                    "",
                    "either both or none of .Etcd.External.CertFile and .Etcd.External.KeyFile must be set",
                ));
            }
            if !cert.is_empty() && !key.is_empty() && ca.is_empty() {
                errors.push(FieldError::invalid(
                    path,
                    "",
                    "setting .Etcd.External.CertFile and .Etcd.External.KeyFile requires .Etcd.External.CAFile",
                ));
            }
            // Plain http is only acceptable when no TLS material is configured at all.
            let require_https = !(ca.is_empty() && cert.is_empty() && key.is_empty());
            if external.endpoints.is_empty() {
                errors.push(FieldError::required(
                    "etcd.external.endpoints",
                    "at least one etcd endpoint URL is needed",
                ));
            }
            for url in &external.endpoints {
                match url.split_once("://") {
                    Some((scheme, rest)) if !scheme.is_empty() && !rest.is_empty() => {
                        if require_https && scheme != "https" {
                            errors.push(FieldError::invalid(
                                "etcd.external.endpoints",
                                url,
                                "the URL must be using the HTTPS scheme",
                            ));
                        }
                    }
                    _ => errors.push(FieldError::invalid(
                        "etcd.external.endpoints",
                        url,
                        "the URL without scheme is not allowed",
                    )),
                }
            }
            for (name, file) in [("caFile", ca), ("certFile", cert), ("keyFile", key)] {
                if !file.is_empty() {
                    validate_absolute_path(file, &format!("etcd.external.{name}"), errors);
                }
            }
        }
    }
}

/// A semantic version inside the window kubeforge deploys (`release::RELEASES`) that the
/// kubeadm of `release` deploys: its own minor, the one before, or a newer one.
fn validate_kubernetes_version(version: &str, release: Release, errors: &mut Vec<FieldError>) {
    let path = "kubernetesVersion";
    let window = Release::window();
    let Some(requested) = KubernetesVersion::parse(version) else {
        let detail = if version.starts_with("stable")
            || version.starts_with("latest")
            || version.starts_with("ci/")
        {
            let minors: Vec<String> = RELEASES
                .iter()
                .map(|release| format!("\"stable-1.{}\"", release.minor))
                .collect();
            format!(
                "version labels are resolved without network access: \"stable\", \"stable-1\", \
                 \"latest\" and \"latest-1\" mean {DEFAULT_KUBERNETES_VERSION}, and {} (or \
                 \"latest-1.<minor>\") the newest patch kubeforge knows of that minor; set one of \
                 those or an explicit version from {window}",
                minors.join(", ")
            )
        } else {
            format!(
                "not a Kubernetes version; use a semantic version from {window} such as \
                 {DEFAULT_KUBERNETES_VERSION}, or the label \"stable\""
            )
        };
        errors.push(FieldError::invalid(path, version, detail));
        return;
    };
    if requested.major != 1 || Release::of_minor(requested.minor).is_none() {
        errors.push(FieldError::invalid(
            path,
            version,
            format!(
                "kubeforge deploys Kubernetes {window} (the control plane of v1.{}, v1.{} and \
                 v1.{}, each with that release's kubeadm defaults); set kubernetesVersion (or \
                 --kubernetes-version) inside that window",
                RELEASES[0].minor, RELEASES[1].minor, RELEASES[2].minor
            ),
        ));
    } else if requested.minor + 1 < release.minor {
        // kubeadm's NormalizeKubernetesVersion; reachable when --kubernetes-version makes
        // kubeforge act as a newer kubeadm than the file's version.
        errors.push(FieldError::invalid(
            path,
            version,
            format!(
                "this version of kubeadm only supports deploying clusters with the control plane \
                 version >= 1.{}.0. Current version: {version} (kubeforge acts as kubeadm \
                 v1.{}: pass --kubernetes-version {version}, or leave it out, to act as the \
                 kubeadm of the file's version)",
                release.minor - 1,
                release.minor
            ),
        ));
    }
}

/// kubeadm's `ValidateJoinConfiguration` of a defaulted JoinConfiguration.
pub(super) fn validate_join(join: &JoinConfiguration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_discovery(&join.discovery, &mut errors);
    validate_node_registration(&join.node_registration, &mut errors);
    if let Some(control_plane) = &join.control_plane {
        validate_api_endpoint(
            &control_plane.local_api_endpoint,
            "controlPlane.localAPIEndpoint",
            &mut errors,
        );
        if let Some(key) = control_plane
            .certificate_key
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            validate_certificate_key(key, "controlPlane.certificateKey", &mut errors);
        }
    }
    let ca_cert_path = join.ca_cert_path.as_deref().unwrap_or_default();
    if !ca_cert_path.starts_with('/') || !ca_cert_path.ends_with(".crt") {
        errors.push(FieldError::invalid(
            "caCertPath",
            ca_cert_path,
            "the ca certificate path must be an absolute path",
        ));
    }
    errors
}

fn validate_discovery(discovery: &Discovery, errors: &mut Vec<FieldError>) {
    let tls_bootstrap_token = discovery.tls_bootstrap_token.as_deref().unwrap_or_default();
    let validate_token = |token: &str, path: &str, errors: &mut Vec<FieldError>| {
        if !is_bootstrap_token(token) {
            errors.push(FieldError::invalid(
                path,
                token,
                "the bootstrap token is invalid",
            ));
        }
    };
    match (&discovery.bootstrap_token, &discovery.file) {
        (None, None) => errors.push(FieldError::invalid(
            "discovery",
            "",
            "bootstrapToken or file must be set",
        )),
        (Some(_), Some(_)) => errors.push(FieldError::invalid(
            "discovery",
            "",
            "bootstrapToken and file cannot both be set",
        )),
        _ => {}
    }
    if let Some(bootstrap) = &discovery.bootstrap_token {
        let path = "discovery.bootstrapToken";
        let endpoint = bootstrap.api_server_endpoint.as_deref().unwrap_or_default();
        if endpoint.is_empty() {
            errors.push(FieldError::required(path, "APIServerEndpoint is not set"));
        }
        if bootstrap.ca_cert_hashes.is_empty() && !bootstrap.unsafe_skip_ca_verification {
            errors.push(FieldError::invalid(
                format!("{path}.caCertHashes"),
                "",
                "using token-based discovery without caCertHashes can be unsafe. Set \
                 unsafeSkipCAVerification as true in your kubeadm config file or pass \
                 --discovery-token-unsafe-skip-ca-verification flag to continue",
            ));
        }
        validate_token(&bootstrap.token, &format!("{path}.token"), errors);
        if let Err(why) = go_split_host_port(endpoint) {
            errors.push(FieldError::invalid(
                format!("{path}.apiServerEndpoint"),
                endpoint,
                why,
            ));
        }
        validate_token(tls_bootstrap_token, "discovery.tlsBootstrapToken", errors);
    }
    if let Some(file) = &discovery.file {
        validate_discovery_kubeconfig(&file.kube_config_path, errors);
        if !tls_bootstrap_token.is_empty() {
            validate_token(tls_bootstrap_token, "discovery.tlsBootstrapToken", errors);
        }
    }
}

/// A discovery kubeconfig is an `https://` URL or a file that exists on this machine.
fn validate_discovery_kubeconfig(location: &str, errors: &mut Vec<FieldError>) {
    let path = "discovery.file.kubeConfigPath";
    match url_scheme(location) {
        None => {
            if !std::path::Path::new(location).exists() {
                errors.push(FieldError::invalid(
                    path,
                    location,
                    "not a valid HTTPS URL or a file on disk",
                ));
            }
        }
        Some(scheme) if !scheme.eq_ignore_ascii_case("https") => errors.push(FieldError::invalid(
            path,
            location,
            "if a URL is used, the scheme must be https",
        )),
        Some(_) => {}
    }
}

/// The scheme of a URL as Go's `url.Parse` finds it: letters, digits, `+`, `-` or `.` after
/// a leading letter, ended by `:`; `None` for a plain path.
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once(':')?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// Go's `net.SplitHostPort`: the host (without brackets) and the port, or its error text
/// (`net.AddrError`).
fn go_split_host_port(hostport: &str) -> Result<(&str, &str), String> {
    let fail = |why: &str| {
        Err(if hostport.is_empty() {
            why.to_owned()
        } else {
            format!("address {hostport}: {why}")
        })
    };
    let Some(last_colon) = hostport.rfind(':') else {
        return fail("missing port in address");
    };
    // The host, and where a '[' resp. ']' may no longer appear.
    let (host, no_open_from, no_close_from) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return fail("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return fail("missing port in address");
        }
        if end + 1 != last_colon {
            return if hostport.as_bytes()[end + 1] == b':' {
                fail("too many colons in address")
            } else {
                fail("missing port in address")
            };
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..last_colon];
        if host.contains(':') {
            return fail("too many colons in address");
        }
        (host, 0, 0)
    };
    if hostport[no_open_from..].contains('[') {
        return fail("unexpected '[' in address");
    }
    if hostport[no_close_from..].contains(']') {
        return fail("unexpected ']' in address");
    }
    Ok((host, &hostport[last_colon + 1..]))
}

/// kubeadm's `ParseHostPort` of `host[:port]`: the host and the port (`None` when there is
/// none), or `None` when the host is neither an IP address nor an RFC 1123 subdomain or the
/// port is not one. Unlike Go's split, a host alone is fine, but an IPv6 address then goes
/// without brackets.
pub(super) fn parse_host_port(hostport: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = go_split_host_port(hostport).unwrap_or((hostport, ""));
    let port = match port {
        "" => None,
        port => Some(
            port.parse::<i64>()
                .ok()
                .and_then(|port| u16::try_from(port).ok())
                .filter(|port| *port != 0)?,
        ),
    };
    let valid_host = host.parse::<IpAddr>().is_ok() || is_dns1123_subdomain(host);
    valid_host.then(|| (host.to_owned(), port))
}

/// kubeadm's `ValidateResetConfiguration` of a defaulted ResetConfiguration.
pub(super) fn validate_reset(reset: &ResetConfiguration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_cri_socket(
        reset.cri_socket.as_deref().unwrap_or_default(),
        "criSocket",
        &mut errors,
    );
    validate_absolute_path(
        reset.certificates_dir.as_deref().unwrap_or_default(),
        "certificatesDir",
        &mut errors,
    );
    for (index, flag) in reset.unmount_flags.iter().enumerate() {
        if !UNMOUNT_FLAGS.contains(&flag.as_str()) {
            errors.push(FieldError::invalid(
                "unmountFlags",
                format!("index {index}"),
                format!("unknown unmount flag {flag}"),
            ));
        }
    }
    errors
}

/// kubeadm's `ValidateUpgradeConfiguration` of a defaulted UpgradeConfiguration.
pub(super) fn validate_upgrade(upgrade: &UpgradeConfiguration) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (path, patches) in [
        ("apply.patches.directory", &upgrade.apply.patches),
        ("node.patches.directory", &upgrade.node.patches),
    ] {
        if let Some(patches) = patches {
            validate_absolute_path(
                patches.directory.as_deref().unwrap_or_default(),
                path,
                &mut errors,
            );
        }
    }
    for (path, policy) in [
        ("apply.imagePullPolicy", &upgrade.apply.image_pull_policy),
        ("node.imagePullPolicy", &upgrade.node.image_pull_policy),
    ] {
        validate_image_pull_policy(policy.as_deref().unwrap_or_default(), path, &mut errors);
    }
    errors
}

fn validate_cert_sans(sans: &[String], path: &str, errors: &mut Vec<FieldError>) {
    for san in sans {
        if Host::classify(san).is_none() {
            errors.push(FieldError::invalid(
                path,
                san,
                "altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards",
            ));
        }
    }
}

fn validate_extra_args(args: &[Arg], path: &str, errors: &mut Vec<FieldError>) {
    for (index, arg) in args.iter().enumerate() {
        if arg.name.is_empty() {
            errors.push(FieldError::invalid(
                path,
                format!("index {index}"),
                "argument has no name",
            ));
        }
    }
}

fn validate_extra_envs(envs: &[EnvVar], path: &str, errors: &mut Vec<FieldError>) {
    for (index, env) in envs.iter().enumerate() {
        if env.name.is_empty() {
            errors.push(FieldError::required(
                format!("{path}[{index}].name"),
                "an environment variable needs a name",
            ));
        }
    }
}

fn validate_extra_volumes(volumes: &[HostPathMount], path: &str, errors: &mut Vec<FieldError>) {
    for (index, volume) in volumes.iter().enumerate() {
        let item = format!("{path}[{index}]");
        for (field, value) in [
            ("name", &volume.name),
            ("hostPath", &volume.host_path),
            ("mountPath", &volume.mount_path),
        ] {
            if value.is_empty() {
                errors.push(FieldError::required(
                    format!("{item}.{field}"),
                    format!("extra volumes need {field}"),
                ));
            }
        }
        if !volume.mount_path.is_empty() {
            validate_absolute_path(&volume.mount_path, &format!("{item}.mountPath"), errors);
        }
        if let Some(path_type) = volume.path_type.as_deref()
            && !HOST_PATH_TYPES.contains(&path_type)
        {
            errors.push(FieldError::invalid(
                format!("{item}.pathType"),
                path_type,
                format!("supported values: {}", quoted_list(&HOST_PATH_TYPES[1..])),
            ));
        }
    }
}

fn validate_absolute_path(path: &str, field: &str, errors: &mut Vec<FieldError>) {
    if !path.starts_with('/') {
        errors.push(FieldError::invalid(field, path, PATH_NOT_ABSOLUTE));
    }
}

/// Whether `<repository>/name:tag` is a valid image reference, as kubeadm checks it.
fn validate_image_repository(repository: &str, field: &str, errors: &mut Vec<FieldError>) {
    if !is_image_repository(repository) {
        errors.push(FieldError::invalid(
            field,
            repository,
            "invalid image repository format",
        ));
    }
}

fn is_image_repository(repository: &str) -> bool {
    let mut parts = repository.split('/');
    let Some(first) = parts.next() else {
        return false;
    };
    // Like the distribution reference grammar: a first part with a dot, a port or named
    // localhost is a registry host; everything else is a path component.
    let first_ok = if first.contains(['.', ':']) || first == "localhost" {
        is_registry_host(first)
    } else {
        is_path_component(first)
    };
    first_ok && parts.all(is_path_component) && repository.len() < 256
}

fn is_registry_host(host: &str) -> bool {
    let (name, port) = if host.starts_with('[') {
        match host.find(']') {
            Some(end) => (&host[..=end], host[end + 1..].strip_prefix(':')),
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    if name.len() + port.map_or(0, |p| p.len() + 1) != host.len() {
        return false;
    }
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let name_ok = if let Some(ipv6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        ipv6.parse::<std::net::Ipv6Addr>().is_ok()
    } else {
        name.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    port_ok && name_ok
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut index = 0;
    while index < bytes.len() {
        if alnum(&bytes[index]) {
            index += 1;
            continue;
        }
        let separator_start = index;
        while index < bytes.len() && !alnum(&bytes[index]) {
            index += 1;
        }
        let separator = &component[separator_start..index];
        let valid = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !valid {
            return false;
        }
    }
    true
}

/// The problems Kubernetes reports for a name that is not an RFC 1123 subdomain.
fn dns1123_subdomain_problems(name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if name.len() > 253 {
        problems.push("must be no more than 253 characters".to_owned());
    }
    // Judged on its characters alone, so an over-long name gets only the length complaint.
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let well_formed = name.split('.').all(|label| {
        let bytes = label.as_bytes();
        match (bytes.first(), bytes.last()) {
            (Some(&first), Some(&last)) => {
                alnum(first) && alnum(last) && bytes.iter().all(|&b| alnum(b) || b == b'-')
            }
            _ => false,
        }
    });
    if !well_formed {
        problems.push(DNS1123_SUBDOMAIN_HELP.to_owned());
    }
    problems
}

fn quoted_list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests;
