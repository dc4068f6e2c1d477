use kubeforge_sdk::api::Duration;
use kubeforge_sdk::api::v1beta4::EncryptionAlgorithm;
use kubeforge_sdk::pki::{ExtKeyUsage, KeyAlgorithm};

use super::*;

/// What `kubeforge init` passes after defaulting, for node `cp-1` at 192.168.0.10.
fn defaulted() -> EffectiveConfig {
    let mut cfg = EffectiveConfig::default();
    cfg.init.node_registration.name = Some("cp-1".into());
    cfg.init.local_api_endpoint.advertise_address = Some("192.168.0.10".into());
    cfg.init.local_api_endpoint.bind_port = Some(6443);
    cfg.cluster.networking.service_subnet = Some("10.96.0.0/12".into());
    cfg.cluster.networking.dns_domain = Some("cluster.local".into());
    cfg.cluster.cluster_name = Some("kubernetes".into());
    cfg.cluster.encryption_algorithm = Some(EncryptionAlgorithm::Rsa2048);
    cfg.cluster.certificate_validity_period = Some(Duration::from_hours(8760));
    cfg.cluster.ca_certificate_validity_period = Some(Duration::from_hours(87600));
    cfg
}

/// File, cluster, server, user (= CN), O.
fn summary(defs: &[KubeconfigDef]) -> Vec<(&str, &str, &str, &str, Vec<String>)> {
    defs.iter()
        .map(|def| {
            assert_eq!(def.user_name, def.client_certificate.common_name);
            (
                def.kubeconfig.file,
                def.cluster_name.as_str(),
                def.server.as_str(),
                def.user_name.as_str(),
                def.client_certificate.organizations.clone(),
            )
        })
        .collect()
}

fn orgs(org: &str) -> Vec<String> {
    vec![org.to_string()]
}

#[test]
fn default_config_yields_kubeadms_five_kubeconfigs() {
    let defs = kubeconfig_specs(&defaulted()).unwrap();
    let local = "https://192.168.0.10:6443";
    assert_eq!(
        summary(&defs),
        [
            (
                "admin.conf",
                "kubernetes",
                local,
                "kubernetes-admin",
                orgs("kubeadm:cluster-admins")
            ),
            (
                "super-admin.conf",
                "kubernetes",
                local,
                "kubernetes-super-admin",
                orgs("system:masters")
            ),
            (
                "kubelet.conf",
                "kubernetes",
                local,
                "system:node:cp-1",
                orgs("system:nodes")
            ),
            (
                "controller-manager.conf",
                "kubernetes",
                local,
                "system:kube-controller-manager",
                vec![]
            ),
            (
                "scheduler.conf",
                "kubernetes",
                local,
                "system:kube-scheduler",
                vec![]
            ),
        ]
    );
    for def in &defs {
        let cert = &def.client_certificate;
        assert_eq!(cert.ext_key_usages, [ExtKeyUsage::ClientAuth]);
        assert!(cert.dns_names.is_empty() && cert.ip_addresses.is_empty());
        assert_eq!(cert.validity_seconds, 8760 * 3600);
    }
    assert_eq!(defs[0].path(), "/etc/kubernetes/admin.conf");
}

#[test]
fn control_plane_endpoint_and_bind_port_set_the_servers() {
    let mut cfg = defaulted();
    cfg.cluster.control_plane_endpoint = Some("lb.example.com".into());
    cfg.cluster.cluster_name = Some("prod".into());
    cfg.init.local_api_endpoint.bind_port = Some(7443);
    cfg.cluster.certificate_validity_period = Some(Duration::from_hours(48));
    let defs = kubeconfig_specs(&cfg).unwrap();
    let servers: Vec<(&str, &str, &str)> = defs
        .iter()
        .map(|d| {
            (
                d.kubeconfig.file,
                d.server.as_str(),
                d.cluster_name.as_str(),
            )
        })
        .collect();
    // The init node's kubelet talks to its own API server (ControlPlaneKubeletLocalMode).
    assert_eq!(
        servers,
        [
            ("admin.conf", "https://lb.example.com:7443", "prod"),
            ("super-admin.conf", "https://lb.example.com:7443", "prod"),
            ("kubelet.conf", "https://192.168.0.10:7443", "prod"),
            (
                "controller-manager.conf",
                "https://192.168.0.10:7443",
                "prod"
            ),
            ("scheduler.conf", "https://192.168.0.10:7443", "prod"),
        ]
    );
    assert!(
        defs.iter()
            .all(|d| d.client_certificate.validity_seconds == 172_800)
    );

    // kubeadm v1.35 accepts ControlPlaneKubeletLocalMode=false and ignores it.
    cfg.cluster.control_plane_endpoint = Some("10.0.0.100:8443".into());
    cfg.cluster.kubernetes_version = Some("v1.35.4".into());
    cfg.cluster
        .feature_gates
        .insert("ControlPlaneKubeletLocalMode".into(), false);
    let defs = kubeconfig_specs(&cfg).unwrap();
    assert_eq!(defs[0].server, "https://10.0.0.100:8443");
    assert_eq!(defs[2].server, "https://192.168.0.10:7443");
    assert_eq!(defs[3].server, "https://192.168.0.10:7443");
}

#[test]
fn ipv6_advertise_address_is_bracketed() {
    let mut cfg = defaulted();
    cfg.init.local_api_endpoint.advertise_address = Some("fd00::10".into());
    cfg.cluster.encryption_algorithm = Some(EncryptionAlgorithm::EcdsaP256);
    let defs = kubeconfig_specs(&cfg).unwrap();
    assert!(defs.iter().all(|d| d.server == "https://[fd00::10]:6443"));
    assert!(matches!(
        kubeforge_sdk::certificates::key_algorithm(&cfg),
        KeyAlgorithm::EcdsaP256
    ));
}

fn existing(ca: &str, server: &str) -> KubeconfigSpec {
    KubeconfigSpec {
        cluster_name: "kubernetes".into(),
        server: server.into(),
        certificate_authority_pem: ca.into(),
        user_name: "kubernetes-admin".into(),
        client_certificate_pem: "CLIENT".into(),
    }
}

#[test]
fn existing_files_are_reused_with_the_same_ca_and_refused_with_another() {
    let defs = kubeconfig_specs(&defaulted()).unwrap();
    let admin = &defs[0];
    let ca = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n";
    assert_eq!(
        kubeconfig_action(admin, None, ca, true).unwrap(),
        KubeconfigAction::Write
    );
    let same = existing(ca.trim_end(), "https://192.168.0.10:6443");
    assert_eq!(
        kubeconfig_action(admin, Some(&same), ca, true).unwrap(),
        KubeconfigAction::Reuse { warning: None }
    );
    let moved = existing(ca, "https://old.example.com:6443");
    assert_eq!(
        kubeconfig_action(admin, Some(&moved), ca, true).unwrap(),
        KubeconfigAction::Reuse {
            warning: Some(
                "a kubeconfig file \"/etc/kubernetes/admin.conf\" exists already but has an \
                 unexpected API Server URL: expected: https://192.168.0.10:6443, got: \
                 https://old.example.com:6443"
                    .into()
            )
        }
    );
    let other = existing("OTHER CA", "https://192.168.0.10:6443");
    match kubeconfig_action(admin, Some(&other), ca, true) {
        Err(PhaseError::Conflict(message)) => assert_eq!(
            message,
            "a kubeconfig file \"/etc/kubernetes/admin.conf\" exists already but has got the wrong CA cert"
        ),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // External CA mode: nothing can be signed, so the file must be there.
    assert!(matches!(
        kubeconfig_action(admin, None, ca, false),
        Err(PhaseError::Conflict(_))
    ));
    assert!(matches!(
        kubeconfig_action(admin, Some(&same), ca, false),
        Ok(KubeconfigAction::Reuse { .. })
    ));
}

#[test]
fn sub_phases_have_kubeadms_names_and_descriptions() {
    let names: Vec<&str> = KUBECONFIGS.iter().map(|k| k.name).collect();
    assert_eq!(
        names,
        [
            "admin",
            "super-admin",
            "kubelet",
            "controller-manager",
            "scheduler"
        ]
    );
    assert_eq!(
        KUBECONFIGS[2].description,
        "Generate a kubeconfig file for the kubelet to use *only* for cluster bootstrapping purposes"
    );
    assert!(check_sub_phase(None).is_ok());
    assert!(check_sub_phase(Some("all")).is_ok());
    assert!(check_sub_phase(Some("scheduler")).is_ok());
    assert!(check_sub_phase(Some("ca")).is_err());
}

#[test]
fn missing_cluster_name_is_a_config_error() {
    let mut cfg = defaulted();
    cfg.cluster.cluster_name = None;
    assert!(matches!(
        kubeconfig_specs(&cfg),
        Err(PhaseError::InvalidConfig(FieldError { field, .. })) if field == "clusterName"
    ));
}
