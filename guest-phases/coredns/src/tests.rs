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
        "registry.k8s.io/coredns/coredns:v1.14.6"
    );
    // Each release's kubeadm deploys its own CoreDNS (`constants.CoreDNSVersion`).
    for (version, coredns) in [("v1.35.4", "v1.13.1"), ("v1.36.3", "v1.14.2")] {
        assert_eq!(
            coredns_image(&config(json!({"kubernetesVersion": version}))),
            format!("registry.k8s.io/coredns/coredns:{coredns}")
        );
    }
    let custom =
        config(json!({"imageRepository": "mirror.example/k8s", "dns": {"imageTag": "v9"}}));
    assert_eq!(coredns_image(&custom), "mirror.example/k8s/coredns:v9");
}

#[test]
fn corefile_is_kubeadms() {
    // The `Corefile` of the ConfigMap kubeadm v1.35 to v1.37 create (read back from a real
    // cluster).
    assert_eq!(
        corefile("cluster.local"),
        ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30 {\n       disable success cluster.local\n       disable denial cluster.local\n    }\n    loop\n    reload\n    loadbalance\n}\n"
    );
    // Without a DNS domain kubeadm's template trims the cache block to its first line.
    assert!(corefile("").contains("\n    prometheus :9153\n"));
    assert!(corefile("").contains("\n    }\n    cache 30\n    loop\n"));
}
