//! kubeadm's validation of a defaulted Init/ClusterConfiguration. Every rule runs and every
//! failure is collected, each naming its field path the way kubeadm's messages do.

use std::net::IpAddr;

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::{Cidr, Host, parse_cidr_list, split_host_port};
use kubeforge_api::v1beta4::{
    Arg, BootstrapToken, ClusterConfiguration, EnvVar, HostPathMount, InitConfiguration,
    NodeRegistrationOptions,
};

use super::defaults::{DEFAULT_KUBERNETES_VERSION, KubernetesVersion};
use super::error::FieldError;

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
/// kubeadm-specific feature gates a 1.35 kubeadm knows.
const KNOWN_FEATURE_GATES: [&str; 5] = [
    "ControlPlaneKubeletLocalMode",
    "NodeLocalCRISocket",
    "PublicKeysECDSA",
    "RootlessControlPlane",
    "WaitForAllControlPlaneComponents",
];
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

/// Validates a defaulted configuration; an empty list means it is valid.
pub(super) fn validate(config: &EffectiveConfig) -> Vec<FieldError> {
    let mut errors = Vec::new();
    validate_init(&config.init, &mut errors);
    validate_cluster(&config.cluster, &mut errors);
    errors
}

fn validate_init(init: &InitConfiguration, errors: &mut Vec<FieldError>) {
    validate_node_registration(&init.node_registration, errors);
    for (index, token) in init.bootstrap_tokens.iter().enumerate() {
        validate_bootstrap_token(token, &format!("bootstrapTokens.{index}"), errors);
    }

    let endpoint = &init.local_api_endpoint;
    let address = endpoint.advertise_address.as_deref().unwrap_or_default();
    if address.parse::<IpAddr>().is_err() {
        errors.push(FieldError::invalid(
            "localAPIEndpoint.advertiseAddress",
            address,
            "ip address is not valid",
        ));
    }
    let port = endpoint.bind_port.unwrap_or_default();
    if !(1..=65535).contains(&port) {
        errors.push(FieldError::invalid(
            "localAPIEndpoint.bindPort",
            port,
            "port number is not valid",
        ));
    }

    if let Some(key) = init.certificate_key.as_deref().filter(|k| !k.is_empty()) {
        validate_certificate_key(key, errors);
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

    let socket = registration.cri_socket.as_deref().unwrap_or_default();
    if socket.is_empty() {
        errors.push(FieldError::invalid(
            "nodeRegistration.criSocket",
            socket,
            "empty CRI socket",
        ));
    } else {
        let scheme = socket.split_once("://").map_or("", |(scheme, _)| scheme);
        if scheme != "unix" {
            errors.push(FieldError::invalid(
                "nodeRegistration.criSocket",
                socket,
                format!("only URL scheme \"unix\" is supported, got {scheme:?}"),
            ));
        }
    }

    validate_extra_args(
        &registration.kubelet_extra_args,
        "nodeRegistration.kubeletExtraArgs",
        errors,
    );

    if let Some(policy) = registration.image_pull_policy.as_deref()
        && !matches!(policy, "" | "Always" | "IfNotPresent" | "Never")
    {
        errors.push(FieldError::invalid(
            "nodeRegistration.imagePullPolicy",
            policy,
            "invalid pull policy",
        ));
    }

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
            &token.usages,
            format!(
                "invalid bootstrap token usage string: {}, valid usage options: signing,authentication",
                unknown.join(",")
            ),
        ));
    }
    if !token.groups.is_empty() && !token.usages.iter().any(|u| u == "authentication") {
        errors.push(FieldError::invalid(
            format!("{path}.groups"),
            &token.groups,
            "token groups cannot be specified unless --usages includes \"authentication\"",
        ));
    }
    for group in &token.groups {
        if !is_bootstrap_group(group) {
            errors.push(FieldError::invalid(
                format!("{path}.groups"),
                &token.groups,
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

fn validate_certificate_key(key: &str, errors: &mut Vec<FieldError>) {
    if let Some(bad) = key.chars().find(|c| !c.is_ascii_hexdigit()) {
        errors.push(FieldError::invalid(
            "certificateKey",
            key,
            format!("certificate key decoding error: invalid hex character {bad:?}"),
        ));
    } else if !key.len().is_multiple_of(2) {
        errors.push(FieldError::invalid(
            "certificateKey",
            key,
            "certificate key decoding error: odd length hex string",
        ));
    } else if key.len() / 2 != CERTIFICATE_KEY_BYTES {
        errors.push(FieldError::invalid(
            "certificateKey",
            key,
            format!(
                "invalid certificate key size {}, the key must be an AES key of size {CERTIFICATE_KEY_BYTES}",
                key.len() / 2
            ),
        ));
    }
}

fn validate_cluster(cluster: &ClusterConfiguration, errors: &mut Vec<FieldError>) {
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

    for gate in cluster.feature_gates.keys() {
        if !KNOWN_FEATURE_GATES.contains(&gate.as_str()) {
            errors.push(FieldError::invalid(
                "featureGates",
                &cluster.feature_gates,
                format!("{gate} is not a valid feature name."),
            ));
        }
    }

    if let Some(endpoint) = cluster
        .control_plane_endpoint
        .as_deref()
        .filter(|e| !e.is_empty())
    {
        let valid =
            split_host_port(endpoint).is_ok_and(|(host, _)| Host::classify(&host).is_some());
        if !valid {
            errors.push(FieldError::invalid(
                "controlPlaneEndpoint",
                endpoint,
                "endpoint is not valid",
            ));
        }
    }

    validate_image_repository(
        cluster.image_repository.as_deref().unwrap_or_default(),
        "imageRepository",
        errors,
    );
    validate_etcd(cluster, errors);
    validate_kubernetes_version(
        cluster.kubernetes_version.as_deref().unwrap_or_default(),
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

/// A semantic version inside the window this kubeadm deploys: its own minor and one below.
fn validate_kubernetes_version(version: &str, errors: &mut Vec<FieldError>) {
    let path = "kubernetesVersion";
    let Some(supported) = KubernetesVersion::parse(DEFAULT_KUBERNETES_VERSION) else {
        return;
    };
    let minimum_minor = supported.minor - 1;
    let Some(requested) = KubernetesVersion::parse(version) else {
        let detail = if version.starts_with("stable")
            || version.starts_with("latest")
            || version.starts_with("ci/")
        {
            format!(
                "version labels are resolved without network access, and only \"stable\", \
                 \"stable-1\", \"stable-1.{0}\", \"latest\", \"latest-1\" and \"latest-1.{0}\" \
                 are known (they mean {DEFAULT_KUBERNETES_VERSION}); set an explicit version such \
                 as v1.{minimum_minor}.0",
                supported.minor
            )
        } else {
            "not a Kubernetes version; use a semantic version such as v1.35.4 or the label \"stable\"".to_owned()
        };
        errors.push(FieldError::invalid(path, version, detail));
        return;
    };
    if requested.major != supported.major || requested.minor < minimum_minor {
        errors.push(FieldError::invalid(
            path,
            version,
            format!(
                "this version of kubeforge only supports deploying clusters with the control plane \
                 version >= {}.{minimum_minor}.0. Current version: {version}",
                supported.major
            ),
        ));
    } else if requested.minor > supported.minor {
        errors.push(FieldError::invalid(
            path,
            version,
            format!(
                "Kubernetes version is greater than kubeforge's ({DEFAULT_KUBERNETES_VERSION}); \
                 use a kubeforge built for v{}.{}",
                requested.major, requested.minor
            ),
        ));
    }
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
