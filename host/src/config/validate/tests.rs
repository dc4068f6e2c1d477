use kubeforge_api::Duration;
use kubeforge_api::v1beta4::{ExternalEtcd, Taint};

use super::*;
use crate::config::defaults::{DEFAULT_CRI_SOCKET, apply_static_defaults};

/// A defaulted, valid configuration to break one field at a time.
fn valid() -> EffectiveConfig {
    let mut config = EffectiveConfig::default();
    config.init.node_registration.name = Some("cp-1".into());
    config.init.local_api_endpoint.advertise_address = Some("10.0.0.1".into());
    config.init.node_registration.cri_socket = Some(DEFAULT_CRI_SOCKET.into());
    apply_static_defaults(&mut config);
    config.init.bootstrap_tokens[0].token = Some("abcdef.0123456789abcdef".into());
    config
}

fn messages(config: &EffectiveConfig) -> Vec<String> {
    validate(config).iter().map(ToString::to_string).collect()
}

/// Asserts exactly one error, for `field`, and returns its text.
fn single_error(config: &EffectiveConfig, field: &str) -> String {
    let errors = validate(config);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].field, field, "{errors:#?}");
    errors[0].to_string()
}

#[test]
fn defaults_are_valid() {
    assert_eq!(messages(&valid()), Vec::<String>::new());
}

#[test]
fn service_subnet_size_limits() {
    let mut config = valid();
    config.cluster.networking.service_subnet = Some("10.96.0.0/30".into());
    assert_eq!(
        single_error(&config, "networking.serviceSubnet"),
        "networking.serviceSubnet: Invalid value: \"10.96.0.0/30\": subnet with 4 address(es) is too small, the minimum is 10"
    );
    config.cluster.networking.service_subnet = Some("10.96.0.0/11".into());
    assert_eq!(
        single_error(&config, "networking.serviceSubnet"),
        "networking.serviceSubnet: Invalid value: \"10.96.0.0/11\": specified service subnet is too large; for 32-bit addresses, the mask must be >= 12"
    );
    config.cluster.networking.service_subnet = Some("fd00::/107".into());
    assert!(
        single_error(&config, "networking.serviceSubnet")
            .contains("for 128-bit addresses, the mask must be >= 108")
    );
    config.cluster.networking.service_subnet = Some("10.96.0.0/12,fd00::/108".into());
    assert!(validate(&config).is_empty());
    config.cluster.networking.service_subnet = Some("10.96.0.0/12,10.97.0.0/16".into());
    assert!(single_error(&config, "networking.serviceSubnet").contains("dual-stack"));
    config.cluster.networking.service_subnet = Some("10.96.0.0".into());
    assert!(single_error(&config, "networking.serviceSubnet").contains("couldn't parse subnet"));
}

#[test]
fn pod_subnet_rules() {
    let mut config = valid();
    config.cluster.networking.pod_subnet = Some("10.244.0.0/16".into());
    assert!(validate(&config).is_empty());
    config.cluster.networking.pod_subnet = Some("10.244.0.0/29".into());
    let errors = messages(&config);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("networking.podSubnet") && e.contains("the minimum is 14")),
        "{errors:?}"
    );
    config.cluster.networking.pod_subnet = Some("10.0.0.0/7".into());
    assert!(
        single_error(&config, "networking.podSubnet").contains("difference is greater than 16")
    );
    config.cluster.networking.pod_subnet = Some("10.244.0.0/25".into());
    assert!(
        single_error(&config, "networking.podSubnet")
            .contains("smaller than the size of node subnet with mask 24")
    );
    config.cluster.controller_manager.extra_args = vec![Arg {
        name: "node-cidr-mask-size-ipv4".into(),
        value: "28".into(),
    }];
    assert!(validate(&config).is_empty());
    config.cluster.controller_manager.extra_args = vec![Arg {
        name: "allocate-node-cidrs".into(),
        value: "false".into(),
    }];
    config.cluster.networking.pod_subnet = Some("10.0.0.0/7".into());
    assert!(validate(&config).is_empty());
    config.cluster.networking.pod_subnet = Some("fd00:10:244::/56".into());
    config.cluster.controller_manager.extra_args.clear();
    assert!(validate(&config).is_empty());
}

#[test]
fn dns_domain_and_node_name_are_rfc1123() {
    let mut config = valid();
    config.cluster.networking.dns_domain = Some("Cluster_Local".into());
    let message = single_error(&config, "networking.dnsDomain");
    assert!(
        message.starts_with(
            "networking.dnsDomain: Invalid value: \"Cluster_Local\": a lowercase RFC 1123 subdomain"
        ),
        "{message}"
    );

    let mut config = valid();
    config.init.node_registration.name = Some("Node_1".into());
    assert!(single_error(&config, "nodeRegistration.name").contains("RFC 1123"));
    config.init.node_registration.name = Some("a".repeat(254));
    assert!(single_error(&config, "nodeRegistration.name").contains("no more than 253"));
    config.init.node_registration.name = None;
    assert!(single_error(&config, "nodeRegistration").contains("Required value: --node-name"));
}

#[test]
fn api_endpoint_rules() {
    let mut config = valid();
    config.init.local_api_endpoint.advertise_address = Some("10.0.0.300".into());
    assert_eq!(
        single_error(&config, "localAPIEndpoint.advertiseAddress"),
        "localAPIEndpoint.advertiseAddress: Invalid value: \"10.0.0.300\": ip address is not valid"
    );
    let mut config = valid();
    config.init.local_api_endpoint.bind_port = Some(70000);
    assert_eq!(
        single_error(&config, "localAPIEndpoint.bindPort"),
        "localAPIEndpoint.bindPort: Invalid value: 70000: port number is not valid"
    );
    config.init.local_api_endpoint.bind_port = Some(-1);
    single_error(&config, "localAPIEndpoint.bindPort");
}

#[test]
fn control_plane_endpoint_rules() {
    let mut config = valid();
    for good in [
        "lb.example.com",
        "lb.example.com:443",
        "10.0.0.100",
        "[fd00::1]:6443",
        "fd00::1",
    ] {
        config.cluster.control_plane_endpoint = Some(good.into());
        assert!(validate(&config).is_empty(), "{good}");
    }
    for bad in ["lb.example.com:0", "LB:443", "lb:port", "https://lb"] {
        config.cluster.control_plane_endpoint = Some(bad.into());
        assert!(
            single_error(&config, "controlPlaneEndpoint").contains("endpoint is not valid"),
            "{bad}"
        );
    }
}

#[test]
fn cert_sans_rules() {
    let mut config = valid();
    config.cluster.api_server.cert_sans = vec![
        "10.0.0.100".into(),
        "*.example.com".into(),
        "lb".into(),
        "bad_name".into(),
    ];
    assert!(
        single_error(&config, "apiServer.certSANs")
            .contains("\"bad_name\": altname is not a valid IP address")
    );
    let mut config = valid();
    config.cluster.etcd.local.as_mut().unwrap().peer_cert_sans = vec!["Bad".into()];
    single_error(&config, "etcd.local.peerCertSANs");
}

#[test]
fn kubernetes_version_window() {
    let mut config = valid();
    for good in ["v1.35.0", "v1.36.9", "v1.37.2", "v1.37.0-rc.1"] {
        config.cluster.kubernetes_version = Some(good.into());
        assert!(validate(&config).is_empty(), "{good}");
    }
    for outside in ["v1.34.9", "v1.38.0", "v2.36.0"] {
        config.cluster.kubernetes_version = Some(outside.into());
        assert!(
            single_error(&config, "kubernetesVersion").contains("v1.35.0 to v1.37.x"),
            "{outside}"
        );
    }
    config.cluster.kubernetes_version = Some("stable-1.34".into());
    let message = single_error(&config, "kubernetesVersion");
    assert!(message.contains("without network access"), "{message}");
    assert!(message.contains("\"stable-1.36\""), "{message}");
    config.cluster.kubernetes_version = Some("one.two".into());
    assert!(single_error(&config, "kubernetesVersion").contains("not a Kubernetes version"));
}

#[test]
fn bootstrap_token_rules() {
    let mut config = valid();
    config.init.bootstrap_tokens[0].token = Some("ABCDEF.0123456789abcdef".into());
    assert_eq!(
        single_error(&config, "bootstrapTokens.0.token"),
        "bootstrapTokens.0.token: Invalid value: \"ABCDEF.0123456789abcdef\": the bootstrap token is invalid"
    );
    let mut config = valid();
    config.init.bootstrap_tokens[0].usages = vec!["signing".into(), "bogus".into()];
    let errors = messages(&config);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("bootstrapTokens.0.usages") && e.contains("bogus")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("bootstrapTokens.0.groups") && e.contains("authentication")),
        "{errors:?}"
    );
    let mut config = valid();
    config.init.bootstrap_tokens[0].groups = vec!["system:nodes".into()];
    assert!(single_error(&config, "bootstrapTokens.0.groups").contains("system:bootstrappers"));
    let mut config = valid();
    config.init.bootstrap_tokens[0].expires = Some("2030-01-01T00:00:00Z".into());
    assert!(single_error(&config, "bootstrapTokens.0").contains("mutually exclusive"));
    let mut config = valid();
    config.init.bootstrap_tokens[0].ttl = Some(Duration::from_secs(-5));
    single_error(&config, "bootstrapTokens.0.ttl");
    config.init.bootstrap_tokens[0].ttl = Some(Duration::ZERO);
    assert!(validate(&config).is_empty(), "ttl 0 means never expires");
    assert!(is_bootstrap_group(
        "system:bootstrappers:kubeadm:default-node-token"
    ));
    assert!(!is_bootstrap_group("system:bootstrappers:"));
    assert!(!is_bootstrap_group("system:bootstrappers:a-"));
}

#[test]
fn node_registration_rules() {
    let mut config = valid();
    config.init.node_registration.cri_socket = Some("tcp://1.2.3.4:1000".into());
    assert!(
        single_error(&config, "nodeRegistration.criSocket")
            .contains("only URL scheme \"unix\" is supported, got \"tcp\"")
    );
    config.init.node_registration.cri_socket = Some(String::new());
    assert!(single_error(&config, "nodeRegistration.criSocket").contains("empty CRI socket"));

    let mut config = valid();
    config.init.node_registration.image_pull_policy = Some("Sometimes".into());
    assert!(
        single_error(&config, "nodeRegistration.imagePullPolicy").contains("invalid pull policy")
    );

    let mut config = valid();
    config.init.node_registration.taints = Some(vec![Taint {
        key: "dedicated".into(),
        effect: "NoWay".into(),
        ..Default::default()
    }]);
    assert!(single_error(&config, "nodeRegistration.taints[0].effect").contains("\"NoSchedule\""));

    let mut config = valid();
    config.init.node_registration.kubelet_extra_args = vec![Arg::default()];
    assert_eq!(
        single_error(&config, "nodeRegistration.kubeletExtraArgs"),
        "nodeRegistration.kubeletExtraArgs: Invalid value: \"index 0\": argument has no name"
    );

    let mut config = valid();
    config.init.node_registration.ignore_preflight_errors = vec!["all".into(), "Swap".into()];
    assert!(
        single_error(&config, "ignore-preflight-errors")
            .contains("don't specify individual checks")
    );
    config.init.node_registration.ignore_preflight_errors = vec!["all".into(), "ALL".into()];
    assert!(validate(&config).is_empty());
}

#[test]
fn certificate_key_rules() {
    let mut config = valid();
    config.init.certificate_key = Some("ab".repeat(32));
    assert!(validate(&config).is_empty());
    config.init.certificate_key = Some("ab".repeat(16));
    assert!(single_error(&config, "certificateKey").contains("invalid certificate key size 16"));
    config.init.certificate_key = Some("xy".repeat(32));
    assert!(single_error(&config, "certificateKey").contains("decoding error"));
}

#[test]
fn paths_volumes_envs_and_repositories() {
    let mut config = valid();
    config.cluster.certificates_dir = Some("pki".into());
    assert_eq!(
        single_error(&config, "certificatesDir"),
        "certificatesDir: Invalid value: \"pki\": path is not absolute"
    );

    let mut config = valid();
    config.cluster.api_server.extra_volumes = vec![HostPathMount {
        name: "audit".into(),
        path_type: Some("Folder".into()),
        ..Default::default()
    }];
    let errors = messages(&config);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].starts_with("apiServer.extraVolumes[0].hostPath: Required value"));
    assert!(errors[1].starts_with("apiServer.extraVolumes[0].mountPath: Required value"));
    assert!(errors[2].starts_with("apiServer.extraVolumes[0].pathType: Invalid value: \"Folder\""));

    let mut config = valid();
    config.cluster.scheduler.extra_envs = vec![EnvVar::default()];
    single_error(&config, "scheduler.extraEnvs[0].name");

    let mut config = valid();
    for good in [
        "registry.k8s.io",
        "localhost:5000/k8s",
        "mirror.example.com/a/b",
        "[::1]:5000/x",
        "docker.io/library",
        "my_repo",
    ] {
        config.cluster.image_repository = Some(good.into());
        assert!(validate(&config).is_empty(), "{good}");
    }
    for bad in [
        "",
        "Registry.example.com/UPPER",
        "registry.k8s.io/",
        "a//b",
        "-bad",
        "reg:port/x",
    ] {
        config.cluster.image_repository = Some(bad.into());
        assert!(
            single_error(&config, "imageRepository").contains("invalid image repository format"),
            "{bad}"
        );
    }
}

#[test]
fn etcd_rules() {
    let mut config = valid();
    config.cluster.etcd.local.as_mut().unwrap().data_dir = Some("var/lib/etcd".into());
    single_error(&config, "etcd.local.dataDir");

    let mut config = valid();
    config.cluster.etcd.external = Some(ExternalEtcd {
        endpoints: vec!["https://10.0.0.5:2379".into()],
        ..Default::default()
    });
    assert!(single_error(&config, "etcd").contains("mutually exclusive"));

    config.cluster.etcd.local = None;
    assert!(validate(&config).is_empty());
    let external = config.cluster.etcd.external.as_mut().unwrap();
    external.cert_file = "/etc/etcd/client.crt".into();
    assert!(
        messages(&config)
            .iter()
            .any(|e| e.contains("either both or none"))
    );
    let external = config.cluster.etcd.external.as_mut().unwrap();
    external.key_file = "/etc/etcd/client.key".into();
    assert!(single_error(&config, "etcd.external").contains("requires .Etcd.External.CAFile"));
    let external = config.cluster.etcd.external.as_mut().unwrap();
    external.ca_file = "ca.crt".into();
    external.endpoints = vec!["http://10.0.0.5:2379".into(), "10.0.0.6:2379".into()];
    let errors = messages(&config);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(errors[0].contains("must be using the HTTPS scheme"));
    assert!(errors[1].contains("without scheme"));
    assert!(errors[2].starts_with("etcd.external.caFile"));
}

#[test]
fn durations_and_feature_gates() {
    let mut config = valid();
    config.cluster.certificate_validity_period = Some(Duration::ZERO);
    config.init.timeouts.as_mut().unwrap().discovery = Some(Duration::from_secs(-1));
    config
        .cluster
        .feature_gates
        .insert("NoSuchGate".into(), true);
    config
        .cluster
        .feature_gates
        .insert("RootlessControlPlane".into(), true);
    let errors = messages(&config);
    assert_eq!(errors.len(), 3, "{errors:?}");
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("timeouts.discovery: Invalid value: \"-1s\""))
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("certificateValidityPeriod: Invalid value: \"0s\""))
    );
    assert!(
        errors.iter().any(|e| e.starts_with("featureGates")
            && e.contains("NoSuchGate is not a valid feature name."))
    );
}

#[test]
fn each_release_knows_its_kubeadms_feature_gates() {
    for (version, known, unknown) in [
        (
            "v1.35.4",
            &[
                "ControlPlaneKubeletLocalMode",
                "NodeLocalCRISocket",
                "PublicKeysECDSA",
                "RootlessControlPlane",
            ][..],
            &["WaitForAllControlPlaneComponents"][..],
        ),
        (
            "v1.36.3",
            &[
                "NodeLocalCRISocket",
                "PublicKeysECDSA",
                "RootlessControlPlane",
            ],
            &["ControlPlaneKubeletLocalMode"],
        ),
        (
            "v1.37.2",
            &["RootlessControlPlane"],
            &["NodeLocalCRISocket", "PublicKeysECDSA"],
        ),
    ] {
        let mut config = valid();
        config.cluster.kubernetes_version = Some(version.into());
        for gate in known {
            config.cluster.feature_gates = [(gate.to_string(), false)].into();
            assert!(validate(&config).is_empty(), "{version} {gate}");
        }
        for gate in unknown {
            config.cluster.feature_gates = [(gate.to_string(), true)].into();
            assert_eq!(
                single_error(&config, "featureGates"),
                format!(
                    "featureGates: Invalid value: {{\"{gate}\":true}}: {gate} is not a valid \
                     feature name."
                ),
                "{version}"
            );
        }
    }
}

#[test]
fn all_problems_are_reported_together() {
    let mut config = valid();
    config.cluster.networking.service_subnet = Some("10.96.0.0/30".into());
    config.init.local_api_endpoint.bind_port = Some(0);
    config.cluster.networking.dns_domain = Some("UPPER".into());
    let fields: Vec<String> = validate(&config).into_iter().map(|e| e.field).collect();
    assert_eq!(
        fields,
        [
            "localAPIEndpoint.bindPort",
            "networking.dnsDomain",
            "networking.serviceSubnet"
        ]
    );
}
