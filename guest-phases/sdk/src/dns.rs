//! What the cluster DNS addons (CoreDNS, kube-dns) share: kubeadm's image rule for
//! `dns.imageRepository`/`dns.imageTag` and the `kube-dns` Service on the tenth service address.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::dns_service_ip;
use serde_json::{Value, json};

use crate::objects::KUBE_SYSTEM;

/// The name of the cluster DNS Service whichever addon serves it, and the `k8s-app` label of
/// the addon's pods.
pub const KUBE_DNS: &str = "kube-dns";

/// kubeadm's `GetDNSImage`: `<repository>/<name>:<tag>` with `dns.imageRepository` (else
/// `default_repository`) and `dns.imageTag` (else `default_tag`).
pub fn dns_image(
    config: &EffectiveConfig,
    default_repository: &str,
    name: &str,
    default_tag: &str,
) -> String {
    let dns = &config.cluster.dns;
    let repository = dns
        .image_repository
        .as_deref()
        .filter(|repository| !repository.is_empty())
        .unwrap_or(default_repository);
    let tag = dns
        .image_tag
        .as_deref()
        .filter(|tag| !tag.is_empty())
        .unwrap_or(default_tag);
    format!("{repository}/{name}:{tag}")
}

/// The `kube-system/kube-dns` Service on the tenth address of the (primary) service subnet, as
/// kubeadm creates it for either addon; `name_label` is its `kubernetes.io/name` (`CoreDNS`,
/// `KubeDNS`).
pub fn dns_service(config: &EffectiveConfig, name_label: &str) -> Result<Value, String> {
    let dns_ip = dns_service_ip(config.service_subnet()).map_err(|e| {
        format!("networking.serviceSubnet: no DNS service address (its tenth address): {e}")
    })?;
    Ok(json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": KUBE_DNS,
            "namespace": KUBE_SYSTEM,
            "labels": {
                "k8s-app": KUBE_DNS,
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": name_label,
            },
            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"},
        },
        "spec": {
            "clusterIP": dns_ip.to_string(),
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
            "selector": {"k8s-app": KUBE_DNS},
        },
    }))
}
