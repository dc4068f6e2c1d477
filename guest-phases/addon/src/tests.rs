use kubeforge_api::EffectiveConfig;
use serde_json::json;

use super::*;

fn config(extra: serde_json::Value) -> EffectiveConfig {
    let mut value = json!({
        "init": {
            "nodeRegistration": {"name": "node1"},
            "localAPIEndpoint": {"advertiseAddress": "192.168.0.10", "bindPort": 6443},
        },
        "cluster": {
            "networking": {"serviceSubnet": "10.96.0.0/12", "dnsDomain": "cluster.local"},
            "certificatesDir": "/etc/kubernetes/pki",
            "kubernetesVersion": "v1.35.4",
            "imageRepository": "registry.k8s.io",
        },
    });
    if let Some(map) = extra.as_object() {
        for (key, v) in map {
            value["cluster"][key] = v.clone();
        }
    }
    serde_json::from_value(value).unwrap()
}

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
fn coredns_service_takes_the_tenth_address_and_kubeadms_image() {
    let objects = coredns_objects(&config(json!({})), 2).unwrap();
    assert_eq!(objects[5]["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(
        objects[4]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/coredns/coredns:v1.13.1"
    );
    let custom =
        config(json!({"imageRepository": "mirror.example/k8s", "dns": {"imageTag": "v9"}}));
    assert_eq!(coredns_image(&custom), "mirror.example/k8s/coredns:v9");
}

#[test]
fn corefile_is_kubeadms() {
    let text = corefile("cluster.local");
    assert!(text.contains(
        "        cache 30 {\n           disable success cluster.local\n           disable denial cluster.local\n        }\n        loop\n"
    ));
    assert!(text.starts_with(".:53 {\n        errors\n        health {\n           lameduck 5s\n"));
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
}
