//! Kubernetes objects as phases build them (JSON values), and applying them through the host's
//! `kube` interface.

use serde_json::{Value, json};

use crate::{Result, kube};

/// The RBAC API group.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// kubeadm's group of the default bootstrap token (`NodeBootstrapTokenAuthGroup`).
pub const NODE_BOOTSTRAP_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// The group of every node's credentials.
pub const NODES_GROUP: &str = "system:nodes";

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

/// A `v1` ConfigMap.
pub fn config_map(namespace: &str, name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    })
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
