//! The `upload-config` phase (`kubeadm init phase upload-config`): the ClusterConfiguration in
//! ConfigMap `kube-system/kubeadm-config`, the kubelets' configuration in
//! `kube-system/kubelet-config` (signed with kubeadm's hash annotation when kubeadm generated
//! it), and the Roles and RoleBindings that let joining nodes read them.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::release::Release;
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
/// them) as kubeadm serialises it into the ConfigMap. `resolv_conf`: what kubelet-start set for
/// systemd-resolved earlier in this run ([`kubelet::RESOLV_CONF_OUTPUT`]), which kubeadm up to
/// v1.36 uploads as well (it set it on the cluster-wide configuration).
pub fn kubelet_configuration(
    config: &EffectiveConfig,
    resolv_conf: Option<&str>,
) -> Result<String, String> {
    let mut kubelet = kubelet::configuration(config)?;
    if let Some(resolv_conf) = resolv_conf
        && Release::of_version(config.kubernetes_version()).minor <= 36
    {
        kubelet["resolvConf"] = json!(resolv_conf);
    }
    Ok(kubeforge_api::yaml::to_string(&kubelet))
}

/// The kubelet-config ConfigMap, its Role and RoleBinding, in kubeadm's order. kubeadm signs
/// the ConfigMap only when it generated the configuration, not when the user supplied a
/// KubeletConfiguration.
pub fn kubelet_config_objects(
    config: &EffectiveConfig,
    resolv_conf: Option<&str>,
) -> Result<Vec<Value>, String> {
    let mut map = config_map(
        NAMESPACE,
        KUBELET_CONFIG,
        json!({"kubelet": kubelet_configuration(config, resolv_conf)?}),
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

/// kubeadm v1.35's Node annotation holding the node's CRI socket, for clusters that turned
/// `NodeLocalCRISocket` off (later kubeadm reads the socket from instance-config.yaml).
pub const CRI_SOCKET_ANNOTATION: &str = "kubeadm.alpha.kubernetes.io/cri-socket";

/// The Node patch kubeadm v1.35's kubelet sub-phase applies ("Preserving the CRISocket
/// information for the control-plane node"), or none: only v1.35 with `NodeLocalCRISocket`
/// off does it.
pub fn cri_socket_annotation(config: &EffectiveConfig) -> Option<Value> {
    let v1_35 = Release::of_version(config.kubernetes_version()).minor == 35;
    (v1_35 && !kubelet::node_local_cri_socket(config)).then(|| {
        let socket = config
            .init
            .node_registration
            .cri_socket
            .as_deref()
            .unwrap_or_default();
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": config.node_name(),
                "annotations": {CRI_SOCKET_ANNOTATION: socket},
            },
        })
    })
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::objects::{apply, wait_for_node};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase,
        failed, info, kubelet, requests,
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
                    kube: vec![
                        requests::rule(
                            &["apply"],
                            &[
                                "configmaps",
                                "rbac.authorization.k8s.io/roles",
                                "rbac.authorization.k8s.io/rolebindings",
                            ],
                            &[NAMESPACE],
                        ),
                        // v1.35 without NodeLocalCRISocket: the CRI socket annotation.
                        requests::rule(&["get", "apply"], &["nodes"], &[]),
                    ],
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
                let resolv_conf = context
                    .outputs
                    .iter()
                    .find(|(name, _)| name == kubelet::RESOLV_CONF_OUTPUT)
                    .map(|(_, value)| value.as_str());
                for object in crate::kubelet_config_objects(&config, resolv_conf).map_err(failed)? {
                    apply(&object)?;
                }
                // kubeadm's PatchNode: wait for the kubelet to register the Node, then patch it.
                if let Some(annotation) = crate::cri_socket_annotation(&config) {
                    wait_for_node(&config, context.dry_run)?;
                    apply(&annotation)?;
                }
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
