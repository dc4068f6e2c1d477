//! The `kube-proxy` component (`kubeadm init phase addon kube-proxy`): kube-proxy's
//! ServiceAccount, ConfigMap with its configuration and kubeconfig, DaemonSet, and its RBAC, with
//! kubeadm's names, labels and rules. It fills the slot `addon/kube-proxy`, which the host skips
//! when `proxy.disabled` is set.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::control_plane_endpoint_url;
use kubeforge_sdk::component_config::merge;
use kubeforge_sdk::objects::{
    KUBE_SYSTEM, NODE_BOOTSTRAP_TOKEN_GROUP, cluster_role_binding, config_map, core_rule, group,
    role, role_binding, service_account, service_account_object, sign_config_map,
};
use serde_json::{Value, json};

pub const KUBE_PROXY: &str = "kube-proxy";

/// Where kube-proxy reads its kubeconfig; kubeadm sets it whatever the user wrote.
const KUBECONFIG_PATH: &str = "/var/lib/kube-proxy/kubeconfig.conf";

/// The cluster's KubeProxyConfiguration as kubeadm serialises it: kubeadm's defaults for this
/// cluster with the user's `KubeProxyConfiguration` document laid over them; an empty
/// `bindAddress` or `clusterCIDR` gets kubeadm's value, and the kubeconfig path is always
/// kubeadm's (`componentconfigs/kubeproxy.go`, `Default`).
pub fn kube_proxy_configuration(config: &EffectiveConfig) -> String {
    let ipv6 = config.advertise_address().contains(':');
    let mut document = kube_proxy_defaults();
    document["bindAddress"] = json!(if ipv6 { "::" } else { "0.0.0.0" });
    if let Some(pod_subnet) = config.cluster.networking.pod_subnet.as_deref() {
        document["clusterCIDR"] = json!(pod_subnet);
    }
    if let Some(user) = &config.kube_proxy {
        let defaults = document.clone();
        merge(&mut document, user);
        for field in ["bindAddress", "clusterCIDR"] {
            if document[field] == "" {
                document[field] = defaults[field].clone();
            }
        }
        document["clientConnection"]["kubeconfig"] = json!(KUBECONFIG_PATH);
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
            "kubeconfig": KUBECONFIG_PATH,
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

/// The kube-proxy objects in kubeadm's order: ServiceAccount, ConfigMap (signed unless the
/// user supplied the configuration), DaemonSet,
/// ClusterRoleBinding, Role, RoleBinding.
pub fn kube_proxy_objects(config: &EffectiveConfig) -> Vec<Value> {
    let proxy_config = kube_proxy_configuration(config);
    let data = json!({
        "kubeconfig.conf": kube_proxy_kubeconfig(&control_plane_endpoint_url(config)),
        // The template's `|-` block drops the final newline.
        "config.conf": proxy_config.trim_end_matches('\n'),
    });
    let mut map = config_map(KUBE_SYSTEM, KUBE_PROXY, data);
    map["metadata"]["labels"] = json!({"app": KUBE_PROXY});
    // kubeadm signs the configuration it generated, not one the user supplied.
    if config.kube_proxy.is_none() {
        sign_config_map(&mut map);
    }
    let labels = json!({"k8s-app": KUBE_PROXY});
    let image = format!(
        "{}/kube-proxy:{}",
        config.image_repository(),
        config.kubernetes_version().replace('+', "_")
    );
    let daemon_set = json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": KUBE_PROXY, "namespace": KUBE_SYSTEM, "labels": labels},
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
                    // kubeadm v1.35's: tolerate every taint (no separate CriticalAddonsOnly).
                    "tolerations": [{"operator": "Exists"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                },
            },
        },
    });
    vec![
        service_account_object(KUBE_SYSTEM, KUBE_PROXY),
        map,
        daemon_set,
        cluster_role_binding(
            "kubeadm:node-proxier",
            "system:node-proxier",
            vec![service_account(KUBE_SYSTEM, KUBE_PROXY)],
        ),
        role(
            KUBE_SYSTEM,
            KUBE_PROXY,
            vec![core_rule(&["get"], &["configmaps"], &[KUBE_PROXY])],
        ),
        role_binding(
            KUBE_SYSTEM,
            KUBE_PROXY,
            KUBE_PROXY,
            vec![group(NODE_BOOTSTRAP_TOKEN_GROUP)],
        ),
    ]
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::objects::{KUBE_SYSTEM, apply};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, info, requests,
    };

    use crate::KUBE_PROXY;

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: KUBE_PROXY.into(),
                description: "Install the kube-proxy addon to a Kubernetes cluster".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    kube: vec![
                        requests::rule(
                            &["apply"],
                            &[
                                "serviceaccounts",
                                "configmaps",
                                "apps/daemonsets",
                                "rbac.authorization.k8s.io/roles",
                                "rbac.authorization.k8s.io/rolebindings",
                            ],
                            &[KUBE_SYSTEM],
                        ),
                        requests::rule(
                            &["apply"],
                            &["rbac.authorization.k8s.io/clusterrolebindings"],
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
            kubeforge_sdk::check_sub_phase(KUBE_PROXY, sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            for object in crate::kube_proxy_objects(&config) {
                apply(&object)?;
            }
            info("[addons] Applied essential addon: kube-proxy");
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
