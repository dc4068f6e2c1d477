use serde_json::json;

use super::*;

#[test]
fn cluster_info_is_admin_confs_cluster_under_the_empty_name() {
    let text = cluster_info_kubeconfig("https://10.0.0.1:6443", "PEM");
    assert_eq!(
        text,
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: UEVN\n    server: https://10.0.0.1:6443\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\nusers: null\n"
    );
    let rbac = cluster_info_rbac();
    assert_eq!(
        rbac[0]["rules"][0]["resourceNames"],
        json!(["cluster-info"])
    );
    assert_eq!(rbac[1]["subjects"][0]["name"], "system:anonymous");
}

#[test]
fn token_rbac_binds_kubeadms_roles() {
    let names: Vec<_> = token_rbac()
        .iter()
        .map(|o| {
            format!(
                "{} {} -> {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap(),
                o["roleRef"]["name"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            "ClusterRoleBinding kubeadm:kubelet-bootstrap -> system:node-bootstrapper",
            "ClusterRole kubeadm:get-nodes -> -",
            "ClusterRoleBinding kubeadm:get-nodes -> kubeadm:get-nodes",
            "ClusterRoleBinding kubeadm:node-autoapprove-bootstrap -> system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            "ClusterRoleBinding kubeadm:node-autoapprove-certificate-rotation -> system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        ]
    );
}
