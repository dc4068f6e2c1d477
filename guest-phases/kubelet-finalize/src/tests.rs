use kubeforge_api::v1beta4::Arg;
use kubeforge_sdk::testing;
use serde_json::json;

use super::*;

fn spec() -> KubeconfigSpec {
    KubeconfigSpec {
        cluster_name: "kubernetes".into(),
        server: "https://192.168.0.10:6443".into(),
        certificate_authority_pem: "CA".into(),
        user_name: "system:node:node1".into(),
        client_certificate_pem: "CERT".into(),
    }
}

#[test]
fn kubelet_conf_points_its_user_at_the_rotating_certificate() {
    assert_eq!(
        rotatable_kubeconfig(&spec(), CURRENT_PEM),
        "apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://192.168.0.10:6443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: system:node:node1
  name: system:node:node1@kubernetes
current-context: system:node:node1@kubernetes
kind: Config
users:
- name: system:node:node1
  user:
    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem
    client-key: /var/lib/kubelet/pki/kubelet-client-current.pem
"
    );
}

#[test]
fn rewriting_a_rewritten_kubelet_conf_changes_nothing() {
    // What the host reads back from a rewritten kubelet.conf: no embedded certificate.
    let reread = KubeconfigSpec {
        client_certificate_pem: String::new(),
        ..spec()
    };
    assert_eq!(
        rotatable_kubeconfig(&reread, CURRENT_PEM),
        rotatable_kubeconfig(&spec(), CURRENT_PEM)
    );
}

#[test]
fn the_certificate_is_looked_for_in_the_kubelet_s_cert_dir() {
    let mut config = testing::config(json!({}));
    assert_eq!(current_pem(&config), CURRENT_PEM);
    config.init.node_registration.kubelet_extra_args = vec![Arg {
        name: "cert-dir".into(),
        value: "/srv/kubelet/pki/".into(),
    }];
    assert_eq!(
        current_pem(&config),
        "/srv/kubelet/pki/kubelet-client-current.pem"
    );
}
