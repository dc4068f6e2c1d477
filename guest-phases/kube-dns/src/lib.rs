//! The `kube-dns` component: the DNS addon kubeadm installed before CoreDNS (`dns.type: kube-dns`,
//! deprecated in kubeadm v1.18), as kubeadm v1.18 made it: the `kube-dns` ServiceAccount, the
//! three-container `kube-dns` Deployment (kubedns, dnsmasq, sidecar) and the `kube-dns` Service on
//! the tenth service address. A swap-in for the slot `addon/coredns` (which the host skips when
//! `dns.disabled` is set).
//!
//! kubeadm created no RBAC for it (the API server's bootstrap policy binds ClusterRole
//! `system:kube-dns` to `kube-system/kube-dns`) and no ConfigMap: the Deployment mounts the
//! ConfigMap `kube-dns` (stubDomains, upstreamNameservers) only if an operator creates it.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::dns_service_ip;
use kubeforge_sdk::dns::{KUBE_DNS, dns_image, dns_service};
use kubeforge_sdk::objects::{CONTROL_PLANE_TAINT, KUBE_SYSTEM, service_account_object};
use serde_json::{Value, json};

/// kubeadm's kube-dns version (`constants.KubeDNSVersion` in v1.18).
pub const KUBE_DNS_VERSION: &str = "1.14.13";
/// kube-dns replicas on a new cluster (the Deployment's default, as kubeadm).
pub const KUBE_DNS_REPLICAS: i64 = 1;
/// The optional ConfigMap volume both kubedns and dnsmasq read their configuration from.
const CONFIG_VOLUME: &str = "kube-dns-config";

/// The images of the kubedns, dnsmasq and sidecar containers: kubeadm's `GetDNSImage`, i.e.
/// `dns.imageRepository` or the cluster's `imageRepository`, and `dns.imageTag` or
/// [`KUBE_DNS_VERSION`] for all three.
pub fn kube_dns_images(config: &EffectiveConfig) -> [String; 3] {
    [
        "k8s-dns-kube-dns",
        "k8s-dns-dnsmasq-nanny",
        "k8s-dns-sidecar",
    ]
    .map(|name| dns_image(config, config.image_repository(), name, KUBE_DNS_VERSION))
}

/// A kube-dns liveness probe: `path` on the sidecar's port 10054, kubeadm's timings.
fn liveness_probe(path: &str) -> Value {
    json!({
        "httpGet": {"path": path, "port": 10054, "scheme": "HTTP"},
        "initialDelaySeconds": 60,
        "timeoutSeconds": 5,
        "successThreshold": 1,
        "failureThreshold": 5,
    })
}

/// The kube-dns objects in kubeadm's order: ServiceAccount, Deployment, Service.
pub fn kube_dns_objects(config: &EffectiveConfig, replicas: i64) -> Result<Vec<Value>, String> {
    let service = dns_service(config, "KubeDNS")?;
    let domain = config.dns_domain();
    // dnsmasq forwards the cluster's zones to kubedns on the loopback address of the DNS
    // Service's family; the sidecar probes both there.
    let ipv6 = dns_service_ip(config.service_subnet()).is_ok_and(|ip| ip.is_ipv6());
    let (bind, probe) = if ipv6 {
        ("::1", "[::1]")
    } else {
        ("127.0.0.1", "127.0.0.1")
    };
    let [kubedns_image, dnsmasq_image, sidecar_image] = kube_dns_images(config);
    let labels = json!({"k8s-app": KUBE_DNS});
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": KUBE_DNS, "namespace": KUBE_SYSTEM, "labels": labels},
        "spec": {
            "replicas": replicas,
            "strategy": {"rollingUpdate": {"maxSurge": "10%", "maxUnavailable": 0}},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "volumes": [{
                        "name": CONFIG_VOLUME,
                        "configMap": {"name": KUBE_DNS, "optional": true},
                    }],
                    "containers": [
                        {
                            "name": "kubedns",
                            "image": kubedns_image,
                            "imagePullPolicy": "IfNotPresent",
                            "resources": {
                                "limits": {"memory": "170Mi"},
                                "requests": {"cpu": "100m", "memory": "70Mi"},
                            },
                            "livenessProbe": liveness_probe("/healthcheck/kubedns"),
                            "readinessProbe": {
                                "httpGet": {"path": "/readiness", "port": 8081, "scheme": "HTTP"},
                                "initialDelaySeconds": 3,
                                "timeoutSeconds": 5,
                            },
                            "args": [
                                format!("--domain={domain}."),
                                "--dns-port=10053",
                                "--config-dir=/kube-dns-config",
                                "--v=2",
                            ],
                            "env": [{"name": "PROMETHEUS_PORT", "value": "10055"}],
                            "ports": [
                                {"containerPort": 10053, "name": "dns-local", "protocol": "UDP"},
                                {"containerPort": 10053, "name": "dns-tcp-local", "protocol": "TCP"},
                                {"containerPort": 10055, "name": "metrics", "protocol": "TCP"},
                            ],
                            "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": "/kube-dns-config"}],
                        },
                        {
                            "name": "dnsmasq",
                            "image": dnsmasq_image,
                            "imagePullPolicy": "IfNotPresent",
                            "livenessProbe": liveness_probe("/healthcheck/dnsmasq"),
                            "args": [
                                "-v=2",
                                "-logtostderr",
                                "-configDir=/etc/k8s/dns/dnsmasq-nanny",
                                "-restartDnsmasq=true",
                                "--",
                                "-k",
                                "--cache-size=1000",
                                "--no-negcache",
                                "--dns-loop-detect",
                                "--log-facility=-",
                                format!("--server=/{domain}/{bind}#10053"),
                                format!("--server=/in-addr.arpa/{bind}#10053"),
                                format!("--server=/ip6.arpa/{bind}#10053"),
                            ],
                            "ports": [
                                {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                            ],
                            "resources": {"requests": {"cpu": "150m", "memory": "20Mi"}},
                            "volumeMounts": [
                                {"name": CONFIG_VOLUME, "mountPath": "/etc/k8s/dns/dnsmasq-nanny"},
                            ],
                        },
                        {
                            "name": "sidecar",
                            "image": sidecar_image,
                            "imagePullPolicy": "IfNotPresent",
                            "livenessProbe": liveness_probe("/metrics"),
                            "args": [
                                "--v=2",
                                "--logtostderr",
                                format!("--probe=kubedns,{probe}:10053,kubernetes.default.svc.{domain},5,SRV"),
                                format!("--probe=dnsmasq,{probe}:53,kubernetes.default.svc.{domain},5,SRV"),
                            ],
                            "ports": [{"containerPort": 10054, "name": "metrics", "protocol": "TCP"}],
                            "resources": {"requests": {"memory": "20Mi", "cpu": "10m"}},
                        },
                    ],
                    // The node's resolv.conf: these pods are the cluster DNS.
                    "dnsPolicy": "Default",
                    "serviceAccountName": KUBE_DNS,
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"},
                    ],
                },
            },
        },
    });
    Ok(vec![
        service_account_object(KUBE_SYSTEM, KUBE_DNS),
        deployment,
        service,
    ])
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::dns::KUBE_DNS;
    use kubeforge_sdk::objects::{KUBE_SYSTEM, apply, deployment_replicas};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, info,
        requests, warn,
    };

    use crate::KUBE_DNS_REPLICAS;

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: KUBE_DNS.into(),
                description: "Install the kube-dns addon to a Kubernetes cluster".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    kube: vec![
                        requests::rule(&["get", "apply"], &["apps/deployments"], &[KUBE_SYSTEM]),
                        requests::rule(
                            &["apply"],
                            &["serviceaccounts", "services"],
                            &[KUBE_SYSTEM],
                        ),
                    ],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase(KUBE_DNS, sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            // An existing Deployment keeps its replica count, as kubeadm.
            let replicas = deployment_replicas(KUBE_SYSTEM, KUBE_DNS)?.unwrap_or(KUBE_DNS_REPLICAS);
            for object in crate::kube_dns_objects(&config, replicas).map_err(failed)? {
                apply(&object)?;
            }
            warn(
                "[addons] WARNING: kube-dns is deprecated and will not be supported in a future version",
            );
            info("[addons] Applied essential addon: kube-dns");
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
