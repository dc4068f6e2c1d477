//! Kubernetes objects as phases build them (JSON values), and applying them through the host's
//! `kube` interface.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use kubeforge_api::EffectiveConfig;

use crate::{PhaseError, Result, kube};

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// kubeadm's group of the default bootstrap token (`NodeBootstrapTokenAuthGroup`).
pub const NODE_BOOTSTRAP_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// The group of every node's credentials.
pub const NODES_GROUP: &str = "system:nodes";

/// The namespace of the cluster's own components and addons.
pub const KUBE_SYSTEM: &str = "kube-system";

/// The taint kubeadm puts on control-plane nodes (`NoSchedule`); addons that may run there
/// tolerate it.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane";

/// kubeadm's `ComponentConfigHashAnnotationKey`: the checksum of a component configuration
/// ConfigMap kubeadm generated (see [`sign_config_map`]).
pub const HASH_ANNOTATION: &str = "kubeadm.kubernetes.io/component-config.hash";

/// Server-side apply `object` (the host owns the field manager); returns the applied object.
pub fn apply(object: &Value) -> Result<Value> {
    let applied = kube::apply(&object.to_string())?;
    serde_json::from_str(&applied)
        .map_err(|e| crate::failed(format!("the host returned an unreadable object: {e}")))
}

/// The object `kind` `namespace/name` of `api_version`, or none.
pub fn get(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>> {
    let found = kube::get(&kube::ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        namespace: namespace.map(Into::into),
        name: name.into(),
    })?;
    found
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| crate::failed(format!("the host returned an unreadable object: {e}")))
        })
        .transpose()
}

/// A JSON merge patch of the object `kind` `namespace/name` (lists are replaced whole); the
/// patched object, or none if it does not exist.
pub fn patch(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    patch: &Value,
) -> Result<Option<Value>> {
    let patched = kube::patch(
        &kube::ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        },
        &patch.to_string(),
    )?;
    patched
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| crate::failed(format!("the host returned an unreadable object: {e}")))
        })
        .transpose()
}

/// Wait until the object exists (and, with `condition`, has that status condition True), for
/// at most `timeout`; the host watches instead of polling. In a dry run the host does not wait:
/// a missing object is a `conflict` error.
pub fn wait(
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    condition: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Value> {
    let found = kube::wait(
        &kube::ObjectRef {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(Into::into),
            name: name.into(),
        },
        condition,
        u32::try_from(timeout.as_secs().max(1)).unwrap_or(u32::MAX),
    )?;
    serde_json::from_str(&found)
        .map_err(|e| crate::failed(format!("the host returned an unreadable object: {e}")))
}

/// Waits for the kubelet to register this node's Node (`nodeRegistration.name`), for at most
/// `timeouts.kubernetesAPICall`, as kubeadm's `PatchNode` does before it patches it. In a dry
/// run, where no kubelet registers anything, a Node that is not there is `Null`.
pub fn wait_for_node(config: &EffectiveConfig, dry_run: bool) -> Result<Value> {
    let name = config.node_name();
    let timeout = config
        .init
        .timeouts
        .as_ref()
        .and_then(|t| t.kubernetes_api_call)
        .and_then(|d| d.to_std())
        .unwrap_or(std::time::Duration::from_secs(60));
    match wait("v1", "Node", None, name, None, timeout) {
        Err(PhaseError::Conflict(_)) if dry_run => Ok(Value::Null),
        Err(PhaseError::Failed(why)) => Err(crate::failed(format!(
            "waiting for the Node {name:?} (nodeRegistration.name) to register: {why}; is the kubelet running?"
        ))),
        other => other,
    }
}

/// The `spec.replicas` of the Deployment `namespace/name`, if it exists: addons keep an
/// operator's replica count when they apply their Deployment again, as kubeadm does.
pub fn deployment_replicas(namespace: &str, name: &str) -> Result<Option<i64>> {
    Ok(get("apps/v1", "Deployment", Some(namespace), name)?
        .and_then(|deployment| deployment["spec"]["replicas"].as_i64()))
}

/// A `v1` ServiceAccount.
pub fn service_account_object(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": name, "namespace": namespace},
    })
}

/// A `v1` ConfigMap.
pub fn config_map(namespace: &str, name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    })
}

/// kubeadm's `ChecksumForConfigMap`: `sha256:` and the hex SHA-256 over the data values in key
/// order.
pub fn config_map_checksum(data: &Map<String, Value>) -> String {
    let mut hash = Sha256::new();
    // serde_json's map is ordered by key.
    for value in data.values() {
        hash.update(value.as_str().unwrap_or_default().as_bytes());
    }
    let hex: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Annotate the ConfigMap `map` with the checksum of its data ([`HASH_ANNOTATION`]), as kubeadm
/// signs the component configurations it generated.
pub fn sign_config_map(map: &mut Value) {
    let empty = Map::new();
    let checksum = config_map_checksum(map["data"].as_object().unwrap_or(&empty));
    map["metadata"]["annotations"][HASH_ANNOTATION] = json!(checksum);
}

/// An RBAC rule on resources of the core group, optionally limited to `resource_names`.
pub fn core_rule(verbs: &[&str], resources: &[&str], resource_names: &[&str]) -> Value {
    let mut rule = json!({"apiGroups": [""], "resources": resources, "verbs": verbs});
    if !resource_names.is_empty() {
        rule["resourceNames"] = json!(resource_names);
    }
    rule
}

/// A Role in `namespace`.
pub fn role(namespace: &str, name: &str, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace},
        "rules": rules,
    })
}

/// A ClusterRole.
pub fn cluster_role(name: &str, rules: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name},
        "rules": rules,
    })
}

/// A RoleBinding in `namespace` to the Role `role`.
pub fn role_binding(namespace: &str, name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name, "namespace": namespace},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "Role", "name": role},
        "subjects": subjects,
    })
}

/// A ClusterRoleBinding to the ClusterRole `role`.
pub fn cluster_role_binding(name: &str, role: &str, subjects: Vec<Value>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

/// An RBAC subject: a group.
pub fn group(name: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": "Group", "name": name})
}

/// An RBAC subject: a user.
pub fn user(name: &str) -> Value {
    json!({"apiGroup": RBAC_GROUP, "kind": "User", "name": name})
}

/// An RBAC subject: a service account.
pub fn service_account(namespace: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": namespace})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_maps_are_signed_over_their_values_in_key_order() {
        let mut map = config_map(KUBE_SYSTEM, "x", json!({"b": "2", "a": "1"}));
        sign_config_map(&mut map);
        let hex: String = Sha256::digest(b"12")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            map["metadata"]["annotations"][HASH_ANNOTATION],
            format!("sha256:{hex}")
        );
    }
}
