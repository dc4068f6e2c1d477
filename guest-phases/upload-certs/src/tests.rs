use kubeforge_api::v1beta4::ExternalEtcd;

use super::*;

fn config(external: Option<ExternalEtcd>) -> EffectiveConfig {
    let mut config = EffectiveConfig::default();
    config.cluster.etcd.external = external;
    config
}

fn keys_and_paths(uploads: &[Upload]) -> Vec<(&str, Option<&str>)> {
    uploads
        .iter()
        .map(|u| (u.key.as_str(), u.path.as_deref()))
        .collect()
}

fn external(ca: &str, cert: &str, key: &str) -> Option<ExternalEtcd> {
    Some(ExternalEtcd {
        endpoints: vec!["https://10.0.0.5:2379".into()],
        ca_file: ca.into(),
        cert_file: cert.into(),
        key_file: key.into(),
        ..ExternalEtcd::default()
    })
}

#[test]
fn local_etcd_uploads_kubeadms_eight_files() {
    let uploads = certs_to_transfer(&config(None)).unwrap();
    assert_eq!(
        keys_and_paths(&uploads),
        [
            ("ca.crt", Some("ca.crt")),
            ("ca.key", Some("ca.key")),
            ("front-proxy-ca.crt", Some("front-proxy-ca.crt")),
            ("front-proxy-ca.key", Some("front-proxy-ca.key")),
            ("sa.pub", Some("sa.pub")),
            ("sa.key", Some("sa.key")),
            ("etcd-ca.crt", Some("etcd/ca.crt")),
            ("etcd-ca.key", Some("etcd/ca.key")),
        ]
    );
}

#[test]
fn external_etcd_uploads_its_client_files_from_the_certificates_dir() {
    let uploads = certs_to_transfer(&config(external(
        "/etc/kubernetes/pki/etcd/ca.crt",
        "/etc/kubernetes/pki/./apiserver-etcd-client.crt",
        "",
    )))
    .unwrap();
    assert_eq!(
        keys_and_paths(&uploads[6..]),
        [
            ("external-etcd-ca.crt", Some("etcd/ca.crt")),
            ("external-etcd.crt", Some("apiserver-etcd-client.crt")),
            // No key file (e.g. etcd without client certificates): an empty value.
            ("external-etcd.key", None),
        ]
    );
    assert!(!uploads.iter().any(|u| u.key.starts_with("etcd-")));
}

#[test]
fn external_etcd_files_outside_the_certificates_dir_are_refused_by_field() {
    for (ca, cert, field) in [
        (
            "/etc/etcd/ca.crt",
            "/etc/kubernetes/pki/c.crt",
            "etcd.external.caFile",
        ),
        (
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/pki/../c.crt",
            "etcd.external.certFile",
        ),
        (
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/pki",
            "etcd.external.certFile",
        ),
        (
            "/etc/kubernetes/pki/ca.crt",
            "/etc/kubernetes/pki-other/c.crt",
            "etcd.external.certFile",
        ),
    ] {
        match certs_to_transfer(&config(external(ca, cert, "/etc/kubernetes/pki/c.key"))) {
            Err(PhaseError::InvalidConfig(error)) => {
                assert_eq!(error.field, field);
                assert!(
                    error.reason.contains("/etc/kubernetes/pki"),
                    "{}",
                    error.reason
                );
            }
            other => panic!("{ca} {cert}: {other:?}"),
        }
    }
}

#[test]
fn token_characters_are_uniform_over_a_to_z_and_digits() {
    // 252..=255 are dropped; 0 → '0', 10 → 'a', 35 → 'z', 36 → '0' again.
    let mut rounds = 0;
    let chars = token_chars(6, |buffer| {
        rounds += 1;
        buffer.fill(255);
        if rounds > 1 {
            buffer[..6].copy_from_slice(&[0, 10, 35, 36, 251, 252]);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(chars, "0az0z0");
    let (id, secret) = random_token().unwrap();
    assert_eq!((id.len(), secret.len()), (6, 16));
    assert!(
        (id.clone() + &secret)
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}.{secret}"
    );
}

#[test]
fn token_secret_has_kubeadms_keys_and_no_usages_and_expires_in_two_hours() {
    let secret = token_secret("abcdef", "0123456789abcdef", 1_700_000_000 - 7200).unwrap();
    assert_eq!(secret["metadata"]["name"], "bootstrap-token-abcdef");
    assert_eq!(secret["metadata"]["namespace"], "kube-system");
    assert_eq!(secret["type"], "bootstrap.kubernetes.io/token");
    let data = secret["data"].as_object().unwrap();
    let decoded = |key: &str| {
        String::from_utf8(STANDARD.decode(data[key].as_str().unwrap()).unwrap()).unwrap()
    };
    assert_eq!(
        data.keys().collect::<Vec<_>>(),
        ["description", "expiration", "token-id", "token-secret"]
    );
    assert_eq!(decoded("token-id"), "abcdef");
    assert_eq!(decoded("token-secret"), "0123456789abcdef");
    assert_eq!(decoded("description"), TOKEN_DESCRIPTION);
    assert_eq!(decoded("expiration"), "2023-11-14T22:13:20Z");
}

#[test]
fn kubeadm_certs_is_controlled_by_the_token_secret() {
    let secret = certs_secret(
        &[("ca.crt".into(), vec![1, 2, 3]), ("ca.key".into(), vec![])],
        "bootstrap-token-abcdef",
        "uid-1",
    );
    assert_eq!(secret["metadata"]["name"], "kubeadm-certs");
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["metadata"]["ownerReferences"],
        json!([{
            "apiVersion": "v1",
            "kind": "Secret",
            "name": "bootstrap-token-abcdef",
            "uid": "uid-1",
            "controller": true,
            "blockOwnerDeletion": true,
        }])
    );
    assert_eq!(secret["data"], json!({"ca.crt": "AQID", "ca.key": ""}));
}

#[test]
fn rbac_lets_the_default_node_token_group_get_kubeadm_certs() {
    let [role, binding] = <[Value; 2]>::try_from(rbac()).unwrap();
    assert_eq!(role["kind"], "Role");
    assert_eq!(role["metadata"]["name"], "kubeadm:kubeadm-certs");
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["kubeadm-certs"]}])
    );
    assert_eq!(binding["kind"], "RoleBinding");
    assert_eq!(binding["metadata"]["namespace"], "kube-system");
    assert_eq!(binding["roleRef"]["kind"], "Role");
    assert_eq!(binding["roleRef"]["name"], "kubeadm:kubeadm-certs");
    assert_eq!(
        binding["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:bootstrappers:kubeadm:default-node-token"}])
    );
}
