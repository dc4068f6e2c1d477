use kubeforge_sdk::objects::HASH_ANNOTATION;
use kubeforge_sdk::testing::config;
use serde_json::json;

use super::*;

#[test]
fn kube_proxy_configuration_matches_kubeadm_byte_for_byte() {
    assert_eq!(
        kube_proxy_configuration(&config(json!({}))),
        include_str!("testdata/kube-proxy-config.yaml")
    );
    let with_pods = kube_proxy_configuration(&config(
        json!({"networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16"}}),
    ));
    assert!(
        with_pods.contains("clusterCIDR: 10.244.0.0/16\n"),
        "{with_pods}"
    );
}

#[test]
fn kube_proxy_objects_carry_kubeadms_names_and_a_signed_config_map() {
    let objects = kube_proxy_objects(&config(json!({})));
    let kinds: Vec<_> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount kube-proxy",
            "ConfigMap kube-proxy",
            "DaemonSet kube-proxy",
            "ClusterRoleBinding kubeadm:node-proxier",
            "Role kube-proxy",
            "RoleBinding kube-proxy",
        ]
    );
    let kubeconfig = objects[1]["data"]["kubeconfig.conf"].as_str().unwrap();
    assert!(kubeconfig.contains("    server: https://192.168.0.10:6443\n"));
    assert!(
        !objects[1]["data"]["config.conf"]
            .as_str()
            .unwrap()
            .ends_with('\n')
    );
    assert!(
        objects[1]["metadata"]["annotations"][HASH_ANNOTATION]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        objects[2]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/kube-proxy:v1.35.4"
    );
    // kubeadm v1.35's DaemonSet tolerates every taint, with one toleration.
    assert_eq!(
        objects[2]["spec"]["template"]["spec"]["tolerations"],
        json!([{"operator": "Exists"}])
    );
}

#[test]
fn a_user_kube_proxy_configuration_is_laid_over_kubeadm_s_and_not_signed() {
    let mut cluster = config(
        json!({"networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16"}}),
    );
    cluster.kube_proxy = Some(json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "ipvs",
        "clusterCIDR": "",
        "clientConnection": {"kubeconfig": "/elsewhere.conf", "qps": 7},
    }));
    let text = kube_proxy_configuration(&cluster);
    assert!(text.contains("mode: ipvs\n"), "{text}");
    assert!(text.contains("clusterCIDR: 10.244.0.0/16\n"), "{text}");
    assert!(
        text.contains("  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"),
        "{text}"
    );
    assert!(text.contains("  qps: 7\n"), "{text}");
    let objects = kube_proxy_objects(&cluster);
    assert!(
        objects[1]["metadata"].get("annotations").is_none(),
        "a user's configuration is uploaded unsigned: {}",
        objects[1]["metadata"]
    );
}
