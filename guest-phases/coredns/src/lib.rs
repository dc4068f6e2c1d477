//! The `coredns` component (`kubeadm init phase addon coredns`): CoreDNS's ServiceAccount,
//! ClusterRole and binding, Corefile ConfigMap, Deployment and the `kube-dns` Service on the
//! tenth service address, with kubeadm's names, labels and rules. It fills the slot
//! `addon/coredns`, which the host skips when `dns.disabled` is set.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::release::Release;
use kubeforge_sdk::DEFAULT_IMAGE_REPOSITORY;
use kubeforge_sdk::dns::{KUBE_DNS, dns_image, dns_service};
use kubeforge_sdk::objects::{
    CONTROL_PLANE_TAINT, KUBE_SYSTEM, cluster_role, cluster_role_binding, config_map, core_rule,
    service_account, service_account_object,
};
use serde_json::{Value, json};

pub const COREDNS: &str = "coredns";

/// CoreDNS replicas on a new cluster.
pub const COREDNS_REPLICAS: i64 = 2;

/// kubeadm's `GetDNSImage` for CoreDNS: on the default registry CoreDNS lives under `coredns/`.
pub fn coredns_image(config: &EffectiveConfig) -> String {
    let repository = if config.image_repository() == DEFAULT_IMAGE_REPOSITORY {
        format!("{DEFAULT_IMAGE_REPOSITORY}/coredns")
    } else {
        config.image_repository().to_string()
    };
    // The CoreDNS of the release's kubeadm (`constants.CoreDNSVersion`).
    let version = Release::of_version(config.kubernetes_version()).coredns_version;
    dns_image(config, &repository, COREDNS, version)
}

/// kubeadm's Corefile for `dns_domain`: the text of its ConfigMap's `Corefile: |` block, so
/// indented as that block scalar reads (its first line's four spaces removed from each line).
pub fn corefile(dns_domain: &str) -> String {
    let cache = if dns_domain.is_empty() {
        "    cache 30\n".to_string()
    } else {
        format!(
            "    cache 30 {{\n       disable success {dns_domain}\n       disable denial {dns_domain}\n    }}\n"
        )
    };
    format!(
        ".:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {dns_domain} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
{cache}    loop
    reload
    loadbalance
}}
"
    )
}

/// The CoreDNS objects in kubeadm's order: ConfigMap (created only if missing: an operator's
/// Corefile is kept), ClusterRole, ClusterRoleBinding, ServiceAccount, Deployment, Service.
pub fn coredns_objects(config: &EffectiveConfig, replicas: i64) -> Result<Vec<Value>, String> {
    let service = dns_service(config, "CoreDNS")?;
    let labels = json!({"k8s-app": KUBE_DNS});
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": COREDNS, "namespace": KUBE_SYSTEM, "labels": labels},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": COREDNS,
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchExpressions": [
                                {"key": "k8s-app", "operator": "In", "values": [KUBE_DNS]},
                            ]},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }]}},
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": CONTROL_PLANE_TAINT, "effect": "NoSchedule"},
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [{
                        "name": COREDNS,
                        "image": coredns_image(config),
                        "imagePullPolicy": "IfNotPresent",
                        "resources": {
                            "limits": {"memory": "170Mi"},
                            "requests": {"cpu": "100m", "memory": "70Mi"},
                        },
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "volumeMounts": [
                            {"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true},
                        ],
                        "ports": [
                            {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                            {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                            {"containerPort": 9153, "name": "metrics", "protocol": "TCP"},
                            {"containerPort": 8080, "name": "liveness-probe", "protocol": "TCP"},
                            {"containerPort": 8181, "name": "readiness-probe", "protocol": "TCP"},
                        ],
                        "livenessProbe": {
                            "httpGet": {"path": "/health", "port": "liveness-probe", "scheme": "HTTP"},
                            "initialDelaySeconds": 60,
                            "timeoutSeconds": 5,
                            "successThreshold": 1,
                            "failureThreshold": 5,
                        },
                        "readinessProbe": {
                            "httpGet": {"path": "/ready", "port": "readiness-probe", "scheme": "HTTP"},
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": true,
                        },
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [{
                        "name": "config-volume",
                        "configMap": {"name": COREDNS, "items": [{"key": "Corefile", "path": "Corefile"}]},
                    }],
                },
            },
        },
    });
    let endpoints = core_rule(
        &["list", "watch"],
        &["endpoints", "services", "pods", "namespaces"],
        &[],
    );
    let slices = json!({
        "apiGroups": ["discovery.k8s.io"],
        "resources": ["endpointslices"],
        "verbs": ["list", "watch"],
    });
    Ok(vec![
        config_map(
            KUBE_SYSTEM,
            COREDNS,
            json!({"Corefile": corefile(config.dns_domain())}),
        ),
        cluster_role("system:coredns", vec![endpoints, slices]),
        cluster_role_binding(
            "system:coredns",
            "system:coredns",
            vec![service_account(KUBE_SYSTEM, COREDNS)],
        ),
        service_account_object(KUBE_SYSTEM, COREDNS),
        deployment,
        service,
    ])
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::objects::{KUBE_SYSTEM, apply, deployment_replicas, get};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, info,
        requests,
    };

    use crate::{COREDNS, COREDNS_REPLICAS};

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: COREDNS.into(),
                description: "Install the CoreDNS addon to a Kubernetes cluster".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    kube: vec![
                        requests::rule(
                            &["get", "apply"],
                            &["configmaps", "apps/deployments"],
                            &[KUBE_SYSTEM],
                        ),
                        requests::rule(
                            &["apply"],
                            &["serviceaccounts", "services"],
                            &[KUBE_SYSTEM],
                        ),
                        requests::rule(
                            &["apply"],
                            &[
                                "rbac.authorization.k8s.io/clusterroles",
                                "rbac.authorization.k8s.io/clusterrolebindings",
                            ],
                            &[],
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
            kubeforge_sdk::check_sub_phase(COREDNS, sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            // An existing Deployment keeps its replica count, as kubeadm.
            let replicas = deployment_replicas(KUBE_SYSTEM, COREDNS)?.unwrap_or(COREDNS_REPLICAS);
            let objects = crate::coredns_objects(&config, replicas).map_err(failed)?;
            for (index, object) in objects.iter().enumerate() {
                // The Corefile is created if missing and otherwise left to the operator.
                if index == 0 && get("v1", "ConfigMap", Some(KUBE_SYSTEM), COREDNS)?.is_some() {
                    continue;
                }
                apply(object)?;
            }
            info("[addons] Applied essential addon: CoreDNS");
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
