use kubeforge_sdk::testing::config;
use serde_json::{Value, json};

use super::*;

fn kinds_and_names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| {
            let meta = &o["metadata"];
            format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap(),
                meta["namespace"].as_str().unwrap(),
                meta["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn container<'a>(deployment: &'a Value, name: &str) -> &'a Value {
    deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn args(container: &Value) -> Vec<&str> {
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn objects_are_kubeadms_service_account_deployment_and_service() {
    let objects = kube_dns_objects(&config(json!({})), 1).unwrap();
    assert_eq!(
        kinds_and_names(&objects),
        [
            "ServiceAccount kube-system/kube-dns",
            "Deployment kube-system/kube-dns",
            "Service kube-system/kube-dns",
        ]
    );
    let deployment = &objects[1];
    assert_eq!(
        deployment["metadata"]["labels"],
        json!({"k8s-app": "kube-dns"})
    );
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["labels"], json!({"k8s-app": "kube-dns"}));
    assert_eq!(pod["spec"]["serviceAccountName"], "kube-dns");
    assert_eq!(pod["spec"]["priorityClassName"], "system-cluster-critical");
    assert_eq!(pod["spec"]["dnsPolicy"], "Default");
    assert_eq!(
        pod["spec"]["volumes"],
        json!([{"name": "kube-dns-config", "configMap": {"name": "kube-dns", "optional": true}}])
    );
    let names: Vec<_> = pod["spec"]["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kubedns", "dnsmasq", "sidecar"]);

    let service = &objects[2];
    assert_eq!(
        service["metadata"]["labels"]["kubernetes.io/name"],
        "KubeDNS"
    );
    assert_eq!(service["metadata"]["labels"]["k8s-app"], "kube-dns");
    assert_eq!(service["spec"]["selector"], json!({"k8s-app": "kube-dns"}));
    assert_eq!(service["spec"]["clusterIP"], "10.96.0.10");
}

#[test]
fn an_existing_replica_count_is_kept() {
    let objects = kube_dns_objects(&config(json!({})), 3).unwrap();
    assert_eq!(objects[1]["spec"]["replicas"], 3);
}

#[test]
fn the_cluster_domain_and_ipv4_loopback_are_in_the_args() {
    let custom = config(
        json!({"networking": {"serviceSubnet": "10.100.0.0/16", "dnsDomain": "corp.example"}}),
    );
    let objects = kube_dns_objects(&custom, 1).unwrap();
    assert_eq!(objects[2]["spec"]["clusterIP"], "10.100.0.10");
    let deployment = &objects[1];
    assert_eq!(
        args(container(deployment, "kubedns")),
        [
            "--domain=corp.example.",
            "--dns-port=10053",
            "--config-dir=/kube-dns-config",
            "--v=2"
        ]
    );
    let dnsmasq = args(container(deployment, "dnsmasq"));
    assert_eq!(
        dnsmasq[dnsmasq.len() - 3..],
        [
            "--server=/corp.example/127.0.0.1#10053",
            "--server=/in-addr.arpa/127.0.0.1#10053",
            "--server=/ip6.arpa/127.0.0.1#10053",
        ]
    );
    assert_eq!(
        args(container(deployment, "sidecar"))[2..],
        [
            "--probe=kubedns,127.0.0.1:10053,kubernetes.default.svc.corp.example,5,SRV",
            "--probe=dnsmasq,127.0.0.1:53,kubernetes.default.svc.corp.example,5,SRV",
        ]
    );
}

#[test]
fn an_ipv6_service_subnet_uses_the_ipv6_loopback() {
    let ipv6 = config(
        json!({"networking": {"serviceSubnet": "fd00:10:96::/112", "dnsDomain": "cluster.local"}}),
    );
    let objects = kube_dns_objects(&ipv6, 1).unwrap();
    assert_eq!(objects[2]["spec"]["clusterIP"], "fd00:10:96::a");
    let deployment = &objects[1];
    assert!(args(container(deployment, "dnsmasq")).contains(&"--server=/cluster.local/::1#10053"));
    assert!(
        args(container(deployment, "sidecar"))
            .contains(&"--probe=kubedns,[::1]:10053,kubernetes.default.svc.cluster.local,5,SRV")
    );
    // Dual-stack: the primary (first) family decides.
    let dual = config(
        json!({"networking": {"serviceSubnet": "fd00:10:96::/112,10.96.0.0/16", "dnsDomain": "cluster.local"}}),
    );
    let objects = kube_dns_objects(&dual, 1).unwrap();
    assert_eq!(objects[2]["spec"]["clusterIP"], "fd00:10:96::a");
    assert!(args(container(&objects[1], "dnsmasq")).contains(&"--server=/ip6.arpa/::1#10053"));
}

#[test]
fn images_follow_kubeadms_dns_image_rule() {
    assert_eq!(
        kube_dns_images(&config(json!({}))),
        [
            "registry.k8s.io/k8s-dns-kube-dns:1.14.13",
            "registry.k8s.io/k8s-dns-dnsmasq-nanny:1.14.13",
            "registry.k8s.io/k8s-dns-sidecar:1.14.13",
        ]
    );
    // The cluster's imageRepository, as is (no `coredns/`-like sub-path).
    let mirror = config(json!({"imageRepository": "mirror.example/k8s"}));
    let objects = kube_dns_objects(&mirror, 1).unwrap();
    assert_eq!(
        container(&objects[1], "dnsmasq")["image"],
        "mirror.example/k8s/k8s-dns-dnsmasq-nanny:1.14.13"
    );
    // dns.imageRepository and dns.imageTag win, for all three images.
    let dns = config(json!({
        "imageRepository": "mirror.example/k8s",
        "dns": {"imageRepository": "dns.example/kube-dns", "imageTag": "1.14.10"},
    }));
    assert_eq!(
        kube_dns_images(&dns),
        [
            "dns.example/kube-dns/k8s-dns-kube-dns:1.14.10",
            "dns.example/kube-dns/k8s-dns-dnsmasq-nanny:1.14.10",
            "dns.example/kube-dns/k8s-dns-sidecar:1.14.10",
        ]
    );
}

#[test]
fn pods_tolerate_the_control_plane_and_critical_addons_only() {
    let objects = kube_dns_objects(&config(json!({})), 1).unwrap();
    assert_eq!(
        objects[1]["spec"]["template"]["spec"]["tolerations"],
        json!([
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        ])
    );
}

#[test]
fn a_service_subnet_without_a_tenth_address_is_refused() {
    let tiny = config(
        json!({"networking": {"serviceSubnet": "10.96.0.0/30", "dnsDomain": "cluster.local"}}),
    );
    let error = kube_dns_objects(&tiny, 1).unwrap_err();
    assert!(error.starts_with("networking.serviceSubnet:"), "{error}");
}
