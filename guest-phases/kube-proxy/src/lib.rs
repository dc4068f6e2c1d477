//! The `kube-proxy` component (`kubeadm init phase addon kube-proxy`): kube-proxy's
//! ServiceAccount, ConfigMap with its configuration and kubeconfig, DaemonSet, and its RBAC, with
//! kubeadm's names, labels and rules. It fills the slot `addon/kube-proxy`, which the host skips
//! when `proxy.disabled` is set.

use std::net::IpAddr;

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::control_plane_endpoint_url;
use kubeforge_api::release::Release;
use kubeforge_sdk::component_config::merge;
use kubeforge_sdk::objects::{
    KUBE_SYSTEM, NODE_BOOTSTRAP_TOKEN_GROUP, cluster_role_binding, config_map, core_rule, group,
    role, role_binding, service_account, service_account_object, sign_config_map,
};
use serde_json::{Value, json};

pub const KUBE_PROXY: &str = "kube-proxy";

/// Where kube-proxy reads its kubeconfig; kubeadm sets it whatever the user wrote.
const KUBECONFIG_PATH: &str = "/var/lib/kube-proxy/kubeconfig.conf";

/// The cluster's KubeProxyConfiguration as kubeadm serialises it, and kubeadm's warnings about
/// it: kubeadm's defaults for this cluster with the user's `KubeProxyConfiguration` document
/// laid over them, and each empty `bindAddress`, `clusterCIDR`, `clientConnection.kubeconfig`
/// (and from v1.37 `mode`) given kubeadm's value (`componentconfigs/kubeproxy.go`, `Default`).
pub struct KubeProxyConfiguration {
    pub yaml: String,
    pub warnings: Vec<String>,
}

const KIND: &str = "KubeProxyConfiguration";

/// kube-proxy's bind address for a node advertising `address` (or for an address of the same
/// family): every address of its IP family.
fn wildcard_of_family(address: &str) -> &'static str {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => "0.0.0.0",
        _ => "::",
    }
}

/// kubeadm's `warnDefaultComponentConfigValue`.
fn recommended_value_warning(field: &str, recommended: &str, given: &str) -> String {
    format!(
        "The recommended value for {field:?} in {KIND:?} is: {recommended}; the provided value is: {given}"
    )
}

pub fn kube_proxy_configuration(config: &EffectiveConfig) -> KubeProxyConfiguration {
    let release = Release::of_version(config.kubernetes_version());
    let mut document = kube_proxy_defaults();
    if let Some(user) = &config.kube_proxy {
        merge(&mut document, user);
    }
    let mut warnings = Vec::new();
    let text = |document: &Value, field: &str| {
        document
            .pointer(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };

    let default_bind_address = wildcard_of_family(config.advertise_address());
    let bind_address = text(&document, "/bindAddress");
    if bind_address.is_empty() {
        document["bindAddress"] = json!(default_bind_address);
    } else if release.minor <= 36 {
        if bind_address != default_bind_address {
            warnings.push(recommended_value_warning(
                "bindAddress",
                default_bind_address,
                &bind_address,
            ));
        }
    } else if bind_address.parse::<IpAddr>().is_err() {
        warnings.push(format!(
            "The bindAddress {bind_address:?} in {KIND:?} is not a valid IP address"
        ));
    } else if !["0.0.0.0", "::"].contains(&bind_address.as_str()) {
        warnings.push(recommended_value_warning(
            "bindAddress",
            wildcard_of_family(&bind_address),
            &bind_address,
        ));
    }

    let pod_subnet = config
        .cluster
        .networking
        .pod_subnet
        .as_deref()
        .unwrap_or_default();
    let cluster_cidr = text(&document, "/clusterCIDR");
    if cluster_cidr.is_empty() && !pod_subnet.is_empty() {
        document["clusterCIDR"] = json!(pod_subnet);
    } else if !pod_subnet.is_empty() && cluster_cidr != pod_subnet {
        warnings.push(recommended_value_warning(
            "clusterCIDR",
            pod_subnet,
            &cluster_cidr,
        ));
    }

    let kubeconfig = text(&document, "/clientConnection/kubeconfig");
    if kubeconfig.is_empty() {
        document["clientConnection"]["kubeconfig"] = json!(KUBECONFIG_PATH);
    } else if kubeconfig != KUBECONFIG_PATH {
        warnings.push(recommended_value_warning(
            "clientConnection.kubeconfig",
            KUBECONFIG_PATH,
            &kubeconfig,
        ));
    }

    if release.minor >= 37 {
        let mode = text(&document, "/mode");
        if mode == "ipvs" {
            warnings.push(format!(
                "The {KIND:?} field \"mode\" is set to \"ipvs\" which has been deprecated since version v1.35. For newer Linux kernel versions, we recommend using the \"nftables\" mode, which has been GA since v1.33. For older Linux kernel versions, you can use the \"iptables\" mode which is still the default one."
            ));
        }
        // v1.37 spells out kube-proxy's own default, which kube-proxy warns about when unset.
        if mode.is_empty() {
            document["mode"] = json!("iptables");
        }
    }
    KubeProxyConfiguration {
        yaml: kubeforge_api::yaml::to_string(&document),
        warnings,
    }
}

fn kube_proxy_defaults() -> Value {
    json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "bindAddress": "",
        "bindAddressHardFail": false,
        "clientConnection": {
            "acceptContentTypes": "",
            "burst": 0,
            "contentType": "",
            "kubeconfig": "",
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
pub fn kube_proxy_objects(config: &EffectiveConfig, proxy_config: &str) -> Vec<Value> {
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
                    // kubeadm's (v1.35 to v1.37): tolerate every taint (no separate
                    // CriticalAddonsOnly).
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
        warn,
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
            let proxy_config = crate::kube_proxy_configuration(&config);
            for warning in proxy_config.warnings {
                warn(warning);
            }
            for object in crate::kube_proxy_objects(&config, &proxy_config.yaml) {
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
