use kubeforge_sdk::api::Duration;
use kubeforge_sdk::api::v1beta4::{EncryptionAlgorithm, ExternalEtcd, LocalEtcd};
use kubeforge_sdk::pki::{ExtKeyUsage, KeyAlgorithm};

use super::*;

use ExtKeyUsage::{ClientAuth, ServerAuth};

const YEAR: u64 = 8760 * 3600;
const TEN_YEARS: u64 = 10 * YEAR;

/// What `kubeforge init` passes after defaulting, for node `cp-1` at 192.168.0.10.
fn defaulted() -> EffectiveConfig {
    let mut cfg = EffectiveConfig::default();
    cfg.init.node_registration.name = Some("cp-1".into());
    cfg.init.local_api_endpoint.advertise_address = Some("192.168.0.10".into());
    cfg.init.local_api_endpoint.bind_port = Some(6443);
    cfg.cluster.networking.service_subnet = Some("10.96.0.0/12".into());
    cfg.cluster.networking.dns_domain = Some("cluster.local".into());
    cfg.cluster.certificates_dir = Some("/etc/kubernetes/pki".into());
    cfg.cluster.cluster_name = Some("kubernetes".into());
    cfg.cluster.kubernetes_version = Some("v1.37.2".into());
    cfg.cluster.encryption_algorithm = Some(EncryptionAlgorithm::Rsa2048);
    cfg.cluster.certificate_validity_period = Some(Duration::from_hours(8760));
    cfg.cluster.ca_certificate_validity_period = Some(Duration::from_hours(87600));
    cfg.cluster.etcd.local = Some(LocalEtcd::default());
    cfg
}

fn spec<'a>(defs: &'a [CertDef], name: &str) -> &'a CertificateSpec {
    &defs
        .iter()
        .find(|def| def.identity.name == name)
        .unwrap_or_else(|| panic!("no {name} certificate"))
        .spec
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// CN, O, DNS SANs, IP SANs, usages, validity.
type Expected<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    &'a [&'a str],
    &'a [ExtKeyUsage],
    u64,
);

fn assert_spec(defs: &[CertDef], name: &str, expected: Expected) {
    let (cn, orgs, dns, ips, usages, validity) = expected;
    let spec = spec(defs, name);
    assert_eq!(spec.common_name, cn, "{name} CN");
    assert_eq!(spec.organizations, strings(orgs), "{name} O");
    assert_eq!(spec.dns_names, strings(dns), "{name} DNS SANs");
    assert_eq!(spec.ip_addresses, strings(ips), "{name} IP SANs");
    assert_eq!(spec.ext_key_usages, usages.to_vec(), "{name} usages");
    assert_eq!(spec.validity_seconds, validity, "{name} validity");
}

#[test]
fn default_config_yields_kubeadms_ten_certificates_in_order() {
    let defs = certificate_specs(&defaulted()).unwrap();
    let files: Vec<(&str, &str, Option<&str>)> = defs
        .iter()
        .map(|def| {
            (
                def.identity.name,
                def.identity.base_name,
                def.identity.issuer,
            )
        })
        .collect();
    assert_eq!(
        files,
        [
            ("ca", "ca", None),
            ("apiserver", "apiserver", Some("ca")),
            (
                "apiserver-kubelet-client",
                "apiserver-kubelet-client",
                Some("ca")
            ),
            ("front-proxy-ca", "front-proxy-ca", None),
            (
                "front-proxy-client",
                "front-proxy-client",
                Some("front-proxy-ca")
            ),
            ("etcd-ca", "etcd/ca", None),
            ("etcd-server", "etcd/server", Some("etcd-ca")),
            ("etcd-peer", "etcd/peer", Some("etcd-ca")),
            (
                "etcd-healthcheck-client",
                "etcd/healthcheck-client",
                Some("etcd-ca")
            ),
            (
                "apiserver-etcd-client",
                "apiserver-etcd-client",
                Some("etcd-ca")
            ),
        ]
    );
    assert!(defs.iter().all(|def| def.warnings.is_empty()));

    assert_spec(
        &defs,
        "ca",
        ("kubernetes", &[], &["kubernetes"], &[], &[], TEN_YEARS),
    );
    assert_spec(
        &defs,
        "apiserver",
        (
            "kube-apiserver",
            &[],
            &[
                "cp-1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ],
            &["10.96.0.1", "192.168.0.10"],
            &[ServerAuth],
            YEAR,
        ),
    );
    assert_spec(
        &defs,
        "apiserver-kubelet-client",
        (
            "kube-apiserver-kubelet-client",
            &[],
            &[],
            &[],
            &[ClientAuth],
            YEAR,
        ),
    );
    assert_spec(
        &defs,
        "front-proxy-ca",
        (
            "front-proxy-ca",
            &[],
            &["front-proxy-ca"],
            &[],
            &[],
            TEN_YEARS,
        ),
    );
    assert_spec(
        &defs,
        "front-proxy-client",
        ("front-proxy-client", &[], &[], &[], &[ClientAuth], YEAR),
    );
    assert_spec(
        &defs,
        "etcd-ca",
        ("etcd-ca", &[], &["etcd-ca"], &[], &[], TEN_YEARS),
    );
    for name in ["etcd-server", "etcd-peer"] {
        assert_spec(
            &defs,
            name,
            (
                "cp-1",
                &[],
                &["cp-1", "localhost"],
                &["192.168.0.10", "127.0.0.1", "::1"],
                &[ServerAuth, ClientAuth],
                YEAR,
            ),
        );
    }
    assert_spec(
        &defs,
        "etcd-healthcheck-client",
        (
            "kube-etcd-healthcheck-client",
            &[],
            &[],
            &[],
            &[ClientAuth],
            YEAR,
        ),
    );
    assert_spec(
        &defs,
        "apiserver-etcd-client",
        (
            "kube-apiserver-etcd-client",
            &[],
            &[],
            &[],
            &[ClientAuth],
            YEAR,
        ),
    );
}

#[test]
fn the_apiserver_kubelet_client_is_a_cluster_admin_only_up_to_v1_35() {
    for (version, organizations) in [
        ("v1.35.4", &["kubeadm:cluster-admins"][..]),
        ("v1.36.3", &[]),
        ("v1.37.2", &[]),
    ] {
        let mut cfg = defaulted();
        cfg.cluster.kubernetes_version = Some(version.into());
        let defs = certificate_specs(&cfg).unwrap();
        assert_eq!(
            spec(&defs, "apiserver-kubelet-client").organizations,
            strings(organizations),
            "{version}"
        );
    }
}

#[test]
fn custom_networking_endpoint_and_sans_follow_kubeadms_rules() {
    let mut cfg = defaulted();
    cfg.cluster.networking.dns_domain = Some("corp.example".into());
    cfg.cluster.networking.service_subnet = Some("10.100.0.0/16".into());
    cfg.cluster.control_plane_endpoint = Some("lb.example.com:8443".into());
    cfg.cluster.cluster_name = Some("prod".into());
    cfg.init.local_api_endpoint.bind_port = Some(7443);
    cfg.cluster.api_server.cert_sans = strings(&[
        "10.0.0.5",
        "*.apps.example.com",
        "Not_A_Name!",
        "fd00::5",
        "kubernetes",
        "10.100.0.1",
        "api.example.com",
    ]);
    cfg.cluster.etcd.local = Some(LocalEtcd {
        server_cert_sans: strings(&["etcd.example.com", "10.0.0.7", "bad name"]),
        peer_cert_sans: strings(&["10.0.0.8"]),
        ..LocalEtcd::default()
    });
    let defs = certificate_specs(&cfg).unwrap();

    let apiserver = defs
        .iter()
        .find(|d| d.identity.name == "apiserver")
        .unwrap();
    // DNS names end up sorted and deduplicated, IPs deduplicated in insertion order.
    assert_eq!(
        apiserver.spec.dns_names,
        strings(&[
            "*.apps.example.com",
            "api.example.com",
            "cp-1",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.corp.example",
            "lb.example.com",
        ])
    );
    assert_eq!(
        apiserver.spec.ip_addresses,
        strings(&["10.100.0.1", "192.168.0.10", "10.0.0.5", "fd00::5"])
    );
    assert_eq!(
        apiserver.warnings,
        [
            "[certificates] WARNING: 'Not_A_Name!' was not added to the 'apiserver.crt' SAN, \
          because it is not a valid IP or RFC-1123 compliant DNS entry"
        ]
    );

    let server = defs
        .iter()
        .find(|d| d.identity.name == "etcd-server")
        .unwrap();
    assert_eq!(
        server.spec.dns_names,
        strings(&["cp-1", "etcd.example.com", "localhost"])
    );
    assert_eq!(
        server.spec.ip_addresses,
        strings(&["192.168.0.10", "127.0.0.1", "::1", "10.0.0.7"])
    );
    assert_eq!(
        server.warnings,
        [
            "[certificates] WARNING: 'bad name' was not added to the 'etcd/server.crt' SAN, \
          because it is not a valid IP or RFC-1123 compliant DNS entry"
        ]
    );
    let peer = spec(&defs, "etcd-peer");
    assert_eq!(peer.dns_names, strings(&["cp-1", "localhost"]));
    assert_eq!(
        peer.ip_addresses,
        strings(&["192.168.0.10", "127.0.0.1", "::1", "10.0.0.8"])
    );
}

#[test]
fn control_plane_endpoint_ip_becomes_an_ip_san() {
    let mut cfg = defaulted();
    cfg.cluster.control_plane_endpoint = Some("10.0.0.100:6443".into());
    let defs = certificate_specs(&cfg).unwrap();
    let apiserver = spec(&defs, "apiserver");
    assert_eq!(
        apiserver.ip_addresses,
        strings(&["10.96.0.1", "192.168.0.10", "10.0.0.100"])
    );
    assert!(!apiserver.dns_names.iter().any(|n| n.starts_with("10.")));

    cfg.cluster.control_plane_endpoint = Some("[fd00::100]:6443".into());
    let defs = certificate_specs(&cfg).unwrap();
    assert_eq!(
        spec(&defs, "apiserver").ip_addresses,
        strings(&["10.96.0.1", "192.168.0.10", "fd00::100"])
    );
}

#[test]
fn ipv6_advertise_address_and_service_subnet() {
    let mut cfg = defaulted();
    cfg.init.local_api_endpoint.advertise_address = Some("fd00::10".into());
    cfg.cluster.networking.service_subnet = Some("fd00:10:96::/112".into());
    let defs = certificate_specs(&cfg).unwrap();
    assert_eq!(
        spec(&defs, "apiserver").ip_addresses,
        strings(&["fd00:10:96::1", "fd00::10"])
    );
    assert_eq!(
        spec(&defs, "etcd-peer").ip_addresses,
        strings(&["fd00::10", "127.0.0.1", "::1"])
    );
}

#[test]
fn dual_stack_uses_the_first_family_for_the_service_ip() {
    let mut cfg = defaulted();
    cfg.cluster.networking.service_subnet = Some("10.96.0.0/12,fd00:10:96::/112".into());
    let defs = certificate_specs(&cfg).unwrap();
    assert_eq!(
        spec(&defs, "apiserver").ip_addresses,
        strings(&["10.96.0.1", "192.168.0.10"])
    );

    cfg.cluster.networking.service_subnet = Some("fd00:10:96::/112,10.96.0.0/12".into());
    let defs = certificate_specs(&cfg).unwrap();
    assert_eq!(
        spec(&defs, "apiserver").ip_addresses,
        strings(&["fd00:10:96::1", "192.168.0.10"])
    );
}

#[test]
fn external_etcd_drops_every_etcd_certificate() {
    let mut cfg = defaulted();
    cfg.cluster.etcd.local = None;
    cfg.cluster.etcd.external = Some(ExternalEtcd {
        endpoints: strings(&["https://etcd.example.com:2379"]),
        ..ExternalEtcd::default()
    });
    let names: Vec<&str> = certificate_specs(&cfg)
        .unwrap()
        .iter()
        .map(|def| def.identity.name)
        .collect();
    assert_eq!(
        names,
        [
            "ca",
            "apiserver",
            "apiserver-kubelet-client",
            "front-proxy-ca",
            "front-proxy-client"
        ]
    );
}

#[test]
fn validity_periods_and_key_algorithm_come_from_the_config() {
    let mut cfg = defaulted();
    cfg.cluster.certificate_validity_period = Some(Duration::from_hours(48));
    cfg.cluster.ca_certificate_validity_period = Some(Duration::from_hours(24 * 365 * 20));
    cfg.cluster.encryption_algorithm = Some(EncryptionAlgorithm::EcdsaP256);
    let defs = certificate_specs(&cfg).unwrap();
    for def in &defs {
        let expected = match def.identity.issuer {
            None => 20 * 365 * 86_400,
            Some(_) => 172_800,
        };
        assert_eq!(def.spec.validity_seconds, expected, "{}", def.identity.name);
    }
    assert!(matches!(
        kubeforge_sdk::certificates::key_algorithm(&cfg),
        KeyAlgorithm::EcdsaP256
    ));
}

#[test]
fn missing_or_bad_advertise_address_is_a_config_error() {
    let mut cfg = defaulted();
    cfg.init.local_api_endpoint.advertise_address = Some("not-an-ip".into());
    assert!(matches!(
        certificate_specs(&cfg),
        Err(PhaseError::InvalidConfig(FieldError { field, .. })) if field == "localAPIEndpoint.advertiseAddress"
    ));
    let mut cfg = defaulted();
    cfg.cluster.networking.service_subnet = Some("10.96.0.0".into());
    assert!(matches!(
        certificate_specs(&cfg),
        Err(PhaseError::InvalidConfig(FieldError { field, .. })) if field == "networking.serviceSubnet"
    ));
}

#[test]
fn leaf_actions_reuse_issue_or_refuse() {
    let apiserver = &CERTIFICATES[1];
    use CaStatus::*;
    use ExistingLeaf::*;
    let action = |existing: ExistingLeaf, ca| leaf_action(apiserver, &existing, ca);
    assert!(matches!(action(Usable, WithKey), Ok(LeafAction::Reuse)));
    assert!(matches!(action(Usable, Keyless), Ok(LeafAction::Reuse)));
    assert!(matches!(action(Absent, New), Ok(LeafAction::Generate)));
    assert!(matches!(action(Absent, WithKey), Ok(LeafAction::Generate)));
    assert!(matches!(
        action(KeyMissingOrMismatched, WithKey),
        Ok(LeafAction::Generate)
    ));
    match action(NotSignedByCa("x509: bad signature".into()), WithKey) {
        Err(PhaseError::Conflict(message)) => assert_eq!(
            message,
            "certificate apiserver is not signed by corresponding CA ca: x509: bad signature"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    for existing in [Absent, KeyMissingOrMismatched] {
        match action(existing, Keyless) {
            Err(PhaseError::Conflict(message)) => {
                assert!(message.starts_with("external CA mode: ca.key is not present"))
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    let etcd_server = &CERTIFICATES[6];
    match leaf_action(etcd_server, &NotSignedByCa("no".into()), WithKey) {
        Err(PhaseError::Conflict(message)) => assert!(
            message
                .starts_with("certificate etcd/server is not signed by corresponding CA etcd/ca")
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn sub_phases_have_kubeadms_names_and_descriptions() {
    let phases = sub_phases();
    let names: Vec<&str> = phases.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "ca",
            "apiserver",
            "apiserver-kubelet-client",
            "front-proxy-ca",
            "front-proxy-client",
            "etcd-ca",
            "etcd-server",
            "etcd-peer",
            "etcd-healthcheck-client",
            "apiserver-etcd-client",
            "sa",
        ]
    );
    assert_eq!(
        phases[0].1,
        "Generate the self-signed Kubernetes CA to provision identities for other Kubernetes components"
    );
    assert_eq!(
        phases[1].1,
        "Generate the certificate for serving the Kubernetes API"
    );
    assert_eq!(
        phases[10].1,
        "Generate a private key for signing service account tokens along with its public key"
    );
    assert!(check_sub_phase(None).is_ok());
    assert!(check_sub_phase(Some("all")).is_ok());
    assert!(check_sub_phase(Some("etcd-peer")).is_ok());
    assert!(matches!(
        check_sub_phase(Some("kubelet")),
        Err(PhaseError::Failed(_))
    ));
}

#[test]
fn serving_certificates_announce_their_sans() {
    let defs = certificate_specs(&defaulted()).unwrap();
    let lines: Vec<String> = defs.iter().filter_map(serving_line).collect();
    assert_eq!(
        lines,
        [
            "[certs] apiserver serving cert is signed for DNS names [cp-1 kubernetes \
             kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local] \
             and IPs [10.96.0.1 192.168.0.10]",
            "[certs] etcd/server serving cert is signed for DNS names [cp-1 localhost] and IPs \
             [192.168.0.10 127.0.0.1 ::1]",
            "[certs] etcd/peer serving cert is signed for DNS names [cp-1 localhost] and IPs \
             [192.168.0.10 127.0.0.1 ::1]",
        ]
    );
}
