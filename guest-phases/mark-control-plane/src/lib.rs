//! The `mark-control-plane` phase (`kubeadm init phase mark-control-plane`): the node's
//! control-plane labels, and the configured taints merged with the ones it already has. The
//! Node must exist (the kubelet registers it); the phase waits for it as kubeadm does.

use kubeforge_api::v1beta4::Taint;
use serde_json::{Value, json};

/// The labels kubeadm puts on control-plane nodes.
pub const LABELS: [&str; 2] = [
    "node-role.kubernetes.io/control-plane",
    "node.kubernetes.io/exclude-from-external-load-balancers",
];

fn taint_json(taint: &Taint) -> Value {
    let mut value = json!({"key": taint.key, "effect": taint.effect});
    if let Some(v) = &taint.value {
        value["value"] = json!(v);
    }
    if let Some(t) = &taint.time_added {
        value["timeAdded"] = json!(t);
    }
    value
}

/// `key[=value]:effect`, as kubeadm prints taints.
pub fn taint_text(taint: &Taint) -> String {
    match &taint.value {
        Some(value) => format!("{}={value}:{}", taint.key, taint.effect),
        None => format!("{}:{}", taint.key, taint.effect),
    }
}

/// kubeadm's `markControlPlaneNode`: the configured taints, then every existing taint that is
/// not one of them; the object to apply to the Node `name`.
pub fn marked_node(name: &str, existing: &Value, taints: &[Taint]) -> Value {
    let mut merged: Vec<Value> = taints.iter().map(taint_json).collect();
    for taint in existing["spec"]["taints"].as_array().into_iter().flatten() {
        if !merged.contains(taint) {
            merged.push(taint.clone());
        }
    }
    let labels: serde_json::Map<String, Value> = LABELS
        .iter()
        .map(|label| (label.to_string(), json!("")))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": merged},
    })
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::objects::{apply, wait_for_node};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, info, requests,
    };

    use crate::LABELS;

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "mark-control-plane".into(),
                description: "Mark a node as a control-plane".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    kube: vec![requests::rule(&["get", "apply"], &["nodes"], &[])],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase("mark-control-plane", sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            let name = config.node_name().to_string();
            let taints = config
                .init
                .node_registration
                .taints
                .clone()
                .unwrap_or_default();
            info(format!(
                "[mark-control-plane] Marking the node {name} as control-plane by adding the labels: [{}]",
                LABELS.join(" ")
            ));
            if !taints.is_empty() {
                let texts: Vec<_> = taints.iter().map(crate::taint_text).collect();
                info(format!(
                    "[mark-control-plane] Marking the node {name} as control-plane by adding the taints [{}]",
                    texts.join(" ")
                ));
            }
            let existing = wait_for_node(&config, context.dry_run)?;
            apply(&crate::marked_node(&name, &existing, &taints))?;
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn control_plane_taint() -> Taint {
        Taint {
            key: "node-role.kubernetes.io/control-plane".into(),
            value: None,
            effect: "NoSchedule".into(),
            time_added: None,
        }
    }

    #[test]
    fn existing_taints_are_kept_after_the_configured_ones() {
        let existing = json!({"spec": {"taints": [
            {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
        ]}});
        let node = marked_node("cp-1", &existing, &[control_plane_taint()]);
        assert_eq!(
            node["spec"]["taints"],
            json!([
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
            ])
        );
        assert_eq!(
            node["metadata"],
            json!({"name": "cp-1", "labels": {
                "node-role.kubernetes.io/control-plane": "",
                "node.kubernetes.io/exclude-from-external-load-balancers": "",
            }})
        );
    }

    #[test]
    fn no_configured_taints_keeps_the_nodes_own() {
        let node = marked_node("cp-1", &Value::Null, &[]);
        assert_eq!(node["spec"]["taints"], json!([]));
        let with_value = Taint {
            value: Some("x".into()),
            ..control_plane_taint()
        };
        assert_eq!(
            taint_text(&with_value),
            "node-role.kubernetes.io/control-plane=x:NoSchedule"
        );
    }
}
