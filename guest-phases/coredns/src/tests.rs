use kubeforge_sdk::testing::config;
use serde_json::json;

use super::*;

#[test]
fn coredns_service_takes_the_tenth_address_and_kubeadms_image() {
    let objects = coredns_objects(&config(json!({})), 2).unwrap();
    assert_eq!(objects[5]["spec"]["clusterIP"], "10.96.0.10");
    assert_eq!(
        objects[5]["metadata"]["labels"]["kubernetes.io/name"],
        "CoreDNS"
    );
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
