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
fn token_rbac_binds_kubeadms_roles_in_kubeadms_order() {
    let names = |minor| -> Vec<String> {
        token_rbac(Release::of_minor(minor).unwrap())
            .iter()
            .flat_map(|step| &step.objects)
            .map(|o| {
                format!(
                    "{} {} -> {}",
                    o["kind"].as_str().unwrap(),
                    o["metadata"]["name"].as_str().unwrap(),
                    o["roleRef"]["name"].as_str().unwrap_or("-")
                )
            })
            .collect()
    };
    let v1_35 = [
        "ClusterRole kubeadm:get-nodes -> -",
        "ClusterRoleBinding kubeadm:get-nodes -> kubeadm:get-nodes",
        "ClusterRoleBinding kubeadm:kubelet-bootstrap -> system:node-bootstrapper",
        "ClusterRoleBinding kubeadm:node-autoapprove-bootstrap -> system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "ClusterRoleBinding kubeadm:node-autoapprove-certificate-rotation -> system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
    ];
    assert_eq!(names(35), v1_35);
    for minor in [36, 37] {
        let mut expected = v1_35.map(String::from).to_vec();
        expected.push(
            "ClusterRoleBinding kubeadm:apiserver-kubelet-client -> system:kubelet-api-admin"
                .into(),
        );
        assert_eq!(names(minor), expected, "v1.{minor}");
    }
    let steps = token_rbac(Release::of_minor(37).unwrap());
    assert_eq!(
        steps[4].objects[0]["subjects"],
        json!([{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "kube-apiserver-kubelet-client"}])
    );
}

#[test]
fn one_token_is_named_alone_and_several_as_a_list() {
    assert_eq!(using_tokens_line(&[]), None);
    assert_eq!(
        using_tokens_line(&["abcdef.0123456789abcdef"]).as_deref(),
        Some("[bootstrap-token] Using token: abcdef.0123456789abcdef")
    );
    assert_eq!(
        using_tokens_line(&["a.b", "c.d"]).as_deref(),
        Some("[bootstrap-token] Using tokens: [a.b c.d]")
    );
}
