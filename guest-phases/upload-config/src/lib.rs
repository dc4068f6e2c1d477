//! The `upload-config` phase (`kubeadm init phase upload-config`): the ClusterConfiguration in
//! ConfigMap `kube-system/kubeadm-config`, the kubelets' configuration in
//! `kube-system/kubelet-config` (signed with kubeadm's hash annotation), and the Roles and
//! RoleBindings that let joining nodes read them.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::dns_service_ip;
use kubeforge_sdk::objects::{
    NODE_BOOTSTRAP_TOKEN_GROUP, NODES_GROUP, config_map, core_rule, group, role, role_binding,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The sub-phase that uploads the ClusterConfiguration.
pub const KUBEADM: &str = "kubeadm";
/// The sub-phase that uploads the kubelet configuration.
pub const KUBELET: &str = "kubelet";

pub const NAMESPACE: &str = "kube-system";
pub const KUBEADM_CONFIG: &str = "kubeadm-config";
pub const KUBELET_CONFIG: &str = "kubelet-config";
/// kubeadm's `ComponentConfigHashAnnotationKey`.
pub const HASH_ANNOTATION: &str = "kubeadm.kubernetes.io/component-config.hash";

/// The kubeadm-config ConfigMap, its Role and RoleBinding, in the order kubeadm creates them.
pub fn kubeadm_config_objects(config: &EffectiveConfig) -> Result<Vec<Value>, String> {
    let cluster = serde_json::to_value(&config.cluster)
        .map_err(|e| format!("encoding the ClusterConfiguration: {e}"))?;
    let name = "kubeadm:nodes-kubeadm-config";
    Ok(vec![
        config_map(
            NAMESPACE,
            KUBEADM_CONFIG,
            json!({"ClusterConfiguration": kubeforge_api::yaml::to_string(&cluster)}),
        ),
        role(
            NAMESPACE,
            name,
            vec![core_rule(&["get"], &["configmaps"], &[KUBEADM_CONFIG])],
        ),
        role_binding(
            NAMESPACE,
            name,
            name,
            vec![group(NODE_BOOTSTRAP_TOKEN_GROUP), group(NODES_GROUP)],
        ),
    ])
}

/// kubeadm's default KubeletConfiguration for this cluster, as kubeadm serialises it.
pub fn kubelet_configuration(config: &EffectiveConfig) -> Result<String, String> {
    let dns = dns_service_ip(config.service_subnet()).map_err(|e| {
        format!("networking.serviceSubnet: no DNS service address (its tenth address): {e}")
    })?;
    let ca_file = format!("{}/ca.crt", config.certificates_dir().trim_end_matches('/'));
    let kubelet = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"cacheTTL": "0s", "enabled": true},
            "x509": {"clientCAFile": ca_file},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": [dns.to_string()],
        "clusterDomain": config.dns_domain(),
        "containerRuntimeEndpoint": "",
        "cpuManagerReconcilePeriod": "0s",
        "crashLoopBackOff": {},
        "evictionPressureTransitionPeriod": "0s",
        "fileCheckFrequency": "0s",
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "httpCheckFrequency": "0s",
        "imageMaximumGCAge": "0s",
        "imageMinimumGCAge": "0s",
        "kind": "KubeletConfiguration",
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "memorySwap": {},
        "nodeStatusReportFrequency": "0s",
        "nodeStatusUpdateFrequency": "0s",
        "rotateCertificates": true,
        "runtimeRequestTimeout": "0s",
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        "staticPodPath": "/etc/kubernetes/manifests",
        "streamingConnectionIdleTimeout": "0s",
        "syncFrequency": "0s",
        "volumeStatsAggPeriod": "0s",
    });
    Ok(kubeforge_api::yaml::to_string(&kubelet))
}

/// kubeadm's `ChecksumForConfigMap`: SHA-256 over the data values in key order.
pub fn config_map_checksum(data: &serde_json::Map<String, Value>) -> String {
    let mut hash = Sha256::new();
    // serde_json's map is ordered by key.
    for value in data.values() {
        hash.update(value.as_str().unwrap_or_default().as_bytes());
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The kubelet-config ConfigMap (signed), its Role and RoleBinding, in kubeadm's order.
pub fn kubelet_config_objects(config: &EffectiveConfig) -> Result<Vec<Value>, String> {
    let mut map = config_map(
        NAMESPACE,
        KUBELET_CONFIG,
        json!({"kubelet": kubelet_configuration(config)?}),
    );
    let checksum = config_map_checksum(map["data"].as_object().expect("data is a map"));
    map["metadata"]["annotations"] = json!({HASH_ANNOTATION: checksum});
    let name = "kubeadm:kubelet-config";
    Ok(vec![
        map,
        role(
            NAMESPACE,
            name,
            vec![core_rule(&["get"], &["configmaps"], &[KUBELET_CONFIG])],
        ),
        role_binding(
            NAMESPACE,
            name,
            name,
            vec![group(NODES_GROUP), group(NODE_BOOTSTRAP_TOKEN_GROUP)],
        ),
    ])
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase,
        failed, info, objects::apply, requests,
    };

    use crate::{KUBEADM, KUBEADM_CONFIG, KUBELET, KUBELET_CONFIG, NAMESPACE};

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "upload-config".into(),
                description: "Upload the kubeadm and kubelet configuration to a ConfigMap".into(),
                sub_phases: vec![
                    SubPhase {
                        name: KUBEADM.into(),
                        description: "Upload the kubeadm ClusterConfiguration to a ConfigMap"
                            .into(),
                    },
                    SubPhase {
                        name: KUBELET.into(),
                        description: "Upload the kubelet component config to a ConfigMap".into(),
                    },
                ],
                requests: CapabilityRequest {
                    kube: vec![requests::rule(
                        &["apply"],
                        &[
                            "configmaps",
                            "rbac.authorization.k8s.io/roles",
                            "rbac.authorization.k8s.io/rolebindings",
                        ],
                        &[NAMESPACE],
                    )],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            let sub_phase = sub_phase.as_deref();
            kubeforge_sdk::check_sub_phase("upload-config", sub_phase, &[KUBEADM, KUBELET])?;
            let config = kubeforge_sdk::config(&context)?;
            if kubeforge_sdk::selects(sub_phase, KUBEADM) {
                info(format!(
                    "[upload-config] Storing the configuration used in ConfigMap {KUBEADM_CONFIG:?} in the {NAMESPACE:?} Namespace"
                ));
                for object in crate::kubeadm_config_objects(&config).map_err(failed)? {
                    apply(&object)?;
                }
            }
            if kubeforge_sdk::selects(sub_phase, KUBELET) {
                info(format!(
                    "[kubelet] Creating a ConfigMap {KUBELET_CONFIG:?} in namespace {NAMESPACE} with the configuration for the kubelets in the cluster"
                ));
                for object in crate::kubelet_config_objects(&config).map_err(failed)? {
                    apply(&object)?;
                }
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
