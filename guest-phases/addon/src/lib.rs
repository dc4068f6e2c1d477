//! The `addon` phase (`kubeadm init phase addon`): CoreDNS (ServiceAccount, ClusterRole and
//! binding, Corefile ConfigMap, Deployment, the `kube-dns` Service on the tenth service address)
//! and kube-proxy (ServiceAccount, ConfigMap with its configuration and kubeconfig, DaemonSet,
//! and its RBAC), with kubeadm's names, labels and rules.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::{control_plane_endpoint_url, dns_service_ip};
use kubeforge_sdk::objects::{
    NODE_BOOTSTRAP_TOKEN_GROUP, cluster_role, cluster_role_binding, config_map, core_rule, group,
    role, role_binding, service_account,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const COREDNS: &str = "coredns";
pub const KUBE_PROXY: &str = "kube-proxy";
pub const NAMESPACE: &str = "kube-system";

/// kubeadm v1.35's CoreDNS version (`constants.CoreDNSVersion`).
pub const COREDNS_VERSION: &str = "v1.13.1";
/// kubeadm's default image repository.
const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";
/// CoreDNS replicas on a new cluster.
pub const COREDNS_REPLICAS: i64 = 2;
const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";
const HASH_ANNOTATION: &str = "kubeadm.kubernetes.io/component-config.hash";

fn service_account_object(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": NAMESPACE},
    })
}

/// kubeadm's `GetDNSImage`.
pub fn coredns_image(config: &EffectiveConfig) -> String {
    let dns = &config.cluster.dns;
    let repository = match dns.image_repository.as_deref().filter(|r| !r.is_empty()) {
        Some(repository) => repository.to_string(),
        None if config.image_repository() == DEFAULT_IMAGE_REPOSITORY => {
            format!("{DEFAULT_IMAGE_REPOSITORY}/coredns")
        }
        None => config.image_repository().to_string(),
    };
    let tag = dns
        .image_tag
        .as_deref()
        .filter(|t| !t.is_empty())
        .unwrap_or(COREDNS_VERSION);
    format!("{repository}/coredns:{tag}")
}

/// kubeadm's Corefile for `dns_domain`.
pub fn corefile(dns_domain: &str) -> String {
    let cache = if dns_domain.is_empty() {
        "        cache 30\n".to_string()
    } else {
        format!(
            "        cache 30 {{\n           disable success {dns_domain}\n           disable denial {dns_domain}\n        }}\n"
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
{cache}        loop
        reload
        loadbalance
    }}
"
    )
}

/// The CoreDNS objects in kubeadm's order: ConfigMap (created only if missing: an operator's
/// Corefile is kept), ClusterRole, ClusterRoleBinding, ServiceAccount, Deployment, Service.
pub fn coredns_objects(config: &EffectiveConfig, replicas: i64) -> Result<Vec<Value>, String> {
    let dns_ip = dns_service_ip(config.service_subnet()).map_err(|e| {
        format!("networking.serviceSubnet: no DNS service address (its tenth address): {e}")
    })?;
    let labels = json!({"k8s-app": "kube-dns"});
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": COREDNS, "namespace": NAMESPACE, "labels": labels},
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
                                {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]},
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
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "kube-dns",
            "namespace": NAMESPACE,
            "labels": {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
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
            "selector": {"k8s-app": "kube-dns"},
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
            NAMESPACE,
            COREDNS,
            json!({"Corefile": corefile(config.dns_domain())}),
        ),
        cluster_role("system:coredns", vec![endpoints, slices]),
        cluster_role_binding(
            "system:coredns",
            "system:coredns",
            vec![service_account(NAMESPACE, COREDNS)],
        ),
        service_account_object(COREDNS),
        deployment,
        service,
    ])
}

/// kubeadm's default KubeProxyConfiguration for this cluster, as kubeadm serialises it.
pub fn kube_proxy_configuration(config: &EffectiveConfig) -> String {
    let ipv6 = config.advertise_address().contains(':');
    let mut document = kube_proxy_defaults();
    document["bindAddress"] = json!(if ipv6 { "::" } else { "0.0.0.0" });
    if let Some(pod_subnet) = config.cluster.networking.pod_subnet.as_deref() {
        document["clusterCIDR"] = json!(pod_subnet);
    }
    kubeforge_api::yaml::to_string(&document)
}

fn kube_proxy_defaults() -> Value {
    json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "bindAddress": "0.0.0.0",
        "bindAddressHardFail": false,
        "clientConnection": {
            "acceptContentTypes": "",
            "burst": 0,
            "contentType": "",
            "kubeconfig": "/var/lib/kube-proxy/kubeconfig.conf",
            "qps": 0,
        },
        "clusterCIDR": "",
        "configSyncPeriod": "0s",
        "conntrack": {
            "maxPerCore": null,
            "min": null,
            "tcpBeLiberal": false,
            "tcpCloseWaitTimeout": null,
            "tcpEstablishedTimeout": null,
            "udpStreamTimeout": "0s",
            "udpTimeout": "0s",
        },
        "detectLocal": {"bridgeInterface": "", "interfaceNamePrefix": ""},
        "detectLocalMode": "",
        "enableProfiling": false,
        "healthzBindAddress": "",
        "hostnameOverride": "",
        "iptables": {
            "localhostNodePorts": null,
            "masqueradeAll": false,
            "masqueradeBit": null,
            "minSyncPeriod": "0s",
            "syncPeriod": "0s",
        },
        "ipvs": {
            "excludeCIDRs": null,
            "minSyncPeriod": "0s",
            "scheduler": "",
            "strictARP": false,
            "syncPeriod": "0s",
            "tcpFinTimeout": "0s",
            "tcpTimeout": "0s",
            "udpTimeout": "0s",
        },
        "kind": "KubeProxyConfiguration",
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "metricsBindAddress": "",
        "mode": "",
        "nftables": {
            "masqueradeAll": false,
            "masqueradeBit": null,
            "minSyncPeriod": "0s",
            "syncPeriod": "0s",
        },
        "nodePortAddresses": null,
        "oomScoreAdj": null,
        "portRange": "",
        "showHiddenMetricsForVersion": "",
        "winkernel": {
            "enableDSR": false,
            "forwardHealthCheckVip": false,
            "networkName": "",
            "rootHnsEndpointName": "",
            "sourceVip": "",
        },
    })
}

/// kube-proxy's kubeconfig: the in-cluster service account against the cluster's endpoint.
pub fn kube_proxy_kubeconfig(server: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    server: {server}
  name: default
contexts:
- context:
    cluster: default
    namespace: default
    user: default
  name: default
current-context: default
users:
- name: default
  user:
    tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token"
    )
}

/// The kube-proxy objects in kubeadm's order: ServiceAccount, ConfigMap (signed), DaemonSet,
/// ClusterRoleBinding, Role, RoleBinding.
pub fn kube_proxy_objects(config: &EffectiveConfig) -> Vec<Value> {
    let proxy_config = kube_proxy_configuration(config);
    let data = json!({
        "kubeconfig.conf": kube_proxy_kubeconfig(&control_plane_endpoint_url(config)),
        // The template's `|-` block drops the final newline.
        "config.conf": proxy_config.trim_end_matches('\n'),
    });
    let mut map = config_map(NAMESPACE, KUBE_PROXY, data);
    map["metadata"]["labels"] = json!({"app": KUBE_PROXY});
    let mut hash = Sha256::new();
    for value in map["data"].as_object().expect("data is a map").values() {
        hash.update(value.as_str().unwrap_or_default().as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    map["metadata"]["annotations"] = json!({HASH_ANNOTATION: format!("sha256:{hex}")});
    let labels = json!({"k8s-app": KUBE_PROXY});
    let image = format!(
        "{}/kube-proxy:{}",
        config.image_repository(),
        config.kubernetes_version().replace('+', "_")
    );
    let daemon_set = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": KUBE_PROXY, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "containers": [{
                        "name": KUBE_PROXY,
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": [
                            "/usr/local/bin/kube-proxy",
                            "--config=/var/lib/kube-proxy/config.conf",
                            "--hostname-override=$(NODE_NAME)",
                        ],
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"mountPath": "/var/lib/kube-proxy", "name": KUBE_PROXY},
                            {"mountPath": "/run/xtables.lock", "name": "xtables-lock", "readOnly": false},
                            {"mountPath": "/lib/modules", "name": "lib-modules", "readOnly": true},
                        ],
                        "env": [{
                            "name": "NODE_NAME",
                            "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}},
                        }],
                    }],
                    "hostNetwork": true,
                    "serviceAccountName": KUBE_PROXY,
                    "volumes": [
                        {"name": KUBE_PROXY, "configMap": {"name": KUBE_PROXY}},
                        {"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}},
                        {"name": "lib-modules", "hostPath": {"path": "/lib/modules"}},
                    ],
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"operator": "Exists"},
                    ],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                },
            },
        },
    });
    vec![
        service_account_object(KUBE_PROXY),
        map,
        daemon_set,
        cluster_role_binding(
            "kubeadm:node-proxier",
            "system:node-proxier",
            vec![service_account(NAMESPACE, KUBE_PROXY)],
        ),
        role(
            NAMESPACE,
            KUBE_PROXY,
            vec![core_rule(&["get"], &["configmaps"], &[KUBE_PROXY])],
        ),
        role_binding(
            NAMESPACE,
            KUBE_PROXY,
            KUBE_PROXY,
            vec![group(NODE_BOOTSTRAP_TOKEN_GROUP)],
        ),
    ]
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::objects::{apply, get};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, KubeRule, PhaseContext, PhaseError, PhaseInfo, PhaseReport,
        SubPhase, failed, info,
    };

    use crate::{COREDNS, COREDNS_REPLICAS, KUBE_PROXY, NAMESPACE};

    struct Component;

    fn rule(verbs: &[&str], resources: &[&str], namespaces: &[&str]) -> KubeRule {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        KubeRule {
            verbs: owned(verbs),
            resources: owned(resources),
            namespaces: owned(namespaces),
        }
    }

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "addon".into(),
                description: "Install required addons for passing conformance tests".into(),
                sub_phases: vec![
                    SubPhase {
                        name: COREDNS.into(),
                        description: "Install the CoreDNS addon to a Kubernetes cluster".into(),
                    },
                    SubPhase {
                        name: KUBE_PROXY.into(),
                        description: "Install the kube-proxy addon to a Kubernetes cluster".into(),
                    },
                ],
                requests: CapabilityRequest {
                    fs: vec![],
                    pki_sign: vec![],
                    pki_create: vec![],
                    kube: vec![
                        rule(
                            &["get", "apply"],
                            &["configmaps", "apps/deployments"],
                            &[NAMESPACE],
                        ),
                        rule(
                            &["apply"],
                            &[
                                "serviceaccounts",
                                "services",
                                "apps/daemonsets",
                                "rbac.authorization.k8s.io/roles",
                                "rbac.authorization.k8s.io/rolebindings",
                            ],
                            &[NAMESPACE],
                        ),
                        rule(
                            &["apply"],
                            &[
                                "rbac.authorization.k8s.io/clusterroles",
                                "rbac.authorization.k8s.io/clusterrolebindings",
                            ],
                            &[],
                        ),
                    ],
                    node_paths: vec![],
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            let sub_phase = sub_phase.as_deref();
            kubeforge_sdk::check_sub_phase("addon", sub_phase, &[COREDNS, KUBE_PROXY])?;
            let config = kubeforge_sdk::config(&context)?;
            if kubeforge_sdk::selects(sub_phase, COREDNS) {
                if config.cluster.dns.disabled {
                    info("[addons] Not installing CoreDNS addon: dns.disabled is set");
                } else {
                    // An existing Deployment keeps its replica count, as kubeadm.
                    let replicas = get("apps/v1", "Deployment", Some(NAMESPACE), COREDNS)?
                        .and_then(|d| d["spec"]["replicas"].as_i64())
                        .unwrap_or(COREDNS_REPLICAS);
                    let objects = crate::coredns_objects(&config, replicas).map_err(failed)?;
                    for (index, object) in objects.iter().enumerate() {
                        // The Corefile is created if missing and otherwise left to the operator.
                        if index == 0 && get("v1", "ConfigMap", Some(NAMESPACE), COREDNS)?.is_some()
                        {
                            continue;
                        }
                        apply(object)?;
                    }
                    info("[addons] Applied essential addon: CoreDNS");
                }
            }
            if kubeforge_sdk::selects(sub_phase, KUBE_PROXY) {
                if config.cluster.proxy.disabled {
                    info("[addons] Not installing kube-proxy addon: proxy.disabled is set");
                } else {
                    for object in crate::kube_proxy_objects(&config) {
                        apply(&object)?;
                    }
                    info("[addons] Applied essential addon: kube-proxy");
                }
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
