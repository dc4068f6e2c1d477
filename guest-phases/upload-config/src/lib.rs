//! The `upload-config` phase (`kubeadm init phase upload-config`): the ClusterConfiguration in
//! ConfigMap `kube-system/kubeadm-config`, the kubelets' configuration in
//! `kube-system/kubelet-config` (signed with kubeadm's hash annotation when kubeadm generated
//! it), and the Roles and RoleBindings that let joining nodes read them.

use kubeforge_api::EffectiveConfig;
use kubeforge_sdk::kubelet;
use kubeforge_sdk::objects::{
    NODE_BOOTSTRAP_TOKEN_GROUP, NODES_GROUP, config_map, core_rule, group, role, role_binding,
    sign_config_map,
};
use serde_json::{Value, json};

/// The sub-phase that uploads the ClusterConfiguration.
pub const KUBEADM: &str = "kubeadm";
/// The sub-phase that uploads the kubelet configuration.
pub const KUBELET: &str = "kubelet";

pub const NAMESPACE: &str = "kube-system";
pub const KUBEADM_CONFIG: &str = "kubeadm-config";
pub const KUBELET_CONFIG: &str = "kubelet-config";

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

/// The cluster's KubeletConfiguration (kubeadm's defaults with the user's document laid over
/// them) as kubeadm serialises it into the ConfigMap.
pub fn kubelet_configuration(config: &EffectiveConfig) -> Result<String, String> {
    Ok(kubeforge_api::yaml::to_string(&kubelet::configuration(
        config,
    )?))
}

/// The kubelet-config ConfigMap, its Role and RoleBinding, in kubeadm's order. kubeadm signs
/// the ConfigMap only when it generated the configuration, not when the user supplied a
/// KubeletConfiguration.
pub fn kubelet_config_objects(config: &EffectiveConfig) -> Result<Vec<Value>, String> {
    let mut map = config_map(
        NAMESPACE,
        KUBELET_CONFIG,
        json!({"kubelet": kubelet_configuration(config)?}),
    );
    if config.kubelet.is_none() {
        sign_config_map(&mut map);
    }
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
