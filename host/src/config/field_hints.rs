//! What to tell someone whose document did not decode because it mixes kubeadm config API
//! versions: a field that only another version has, or extra arguments written in another
//! version's shape (a map in v1beta3, a list of name/value pairs in v1beta4 and v1).

use serde_json::{Map, Value};

use super::api_versions::ConfigApi;

/// A field one API version has and another does not.
struct ForeignField {
    /// The versions that do not have it.
    missing_in: &'static [ConfigApi],
    kind: &'static str,
    /// Dotted JSON path; `[]` stands for every item of a list.
    path: &'static str,
    /// Which version has it, and what to write instead.
    hint: &'static str,
}

const V1BETA4_AND_V1: &[ConfigApi] = &[ConfigApi::V1beta4, ConfigApi::V1];
const V1BETA4: &[ConfigApi] = &[ConfigApi::V1beta4];
const V1BETA3: &[ConfigApi] = &[ConfigApi::V1beta3];

const MERGE_METHOD_HINT: &str = "it exists only in kubeadm.k8s.io/v1 (experimental, Kubernetes \
    v1.37); in v1beta4 an extra argument replaces kubeadm's own, so write the merged value";
const EXTRA_ENVS_HINT: &str = "it exists from kubeadm.k8s.io/v1beta4 on; v1beta3 cannot set \
    the static Pods' environment (write the document as v1beta4, or use a patch)";
const VALIDITY_HINT: &str = "it exists from kubeadm.k8s.io/v1beta4 on; with v1beta3, \
    certificates last one year and CAs ten (write the document as v1beta4 to change that)";

const FOREIGN_FIELDS: &[ForeignField] = &[
    ForeignField {
        missing_in: V1BETA4_AND_V1,
        kind: "ClusterConfiguration",
        path: "apiServer.timeoutForControlPlane",
        hint: "it exists only in kubeadm.k8s.io/v1beta3; from v1beta4 on the control-plane wait \
               is the InitConfiguration's timeouts.controlPlaneComponentHealthCheck",
    },
    ForeignField {
        missing_in: V1BETA4_AND_V1,
        kind: "JoinConfiguration",
        path: "discovery.timeout",
        hint: "it exists only in kubeadm.k8s.io/v1beta3; from v1beta4 on write it as \
               timeouts.discovery",
    },
    ForeignField {
        missing_in: V1BETA4,
        kind: "InitConfiguration",
        path: "nodeRegistration.kubeletExtraArgs[].mergeMethod",
        hint: MERGE_METHOD_HINT,
    },
    ForeignField {
        missing_in: V1BETA4,
        kind: "JoinConfiguration",
        path: "nodeRegistration.kubeletExtraArgs[].mergeMethod",
        hint: MERGE_METHOD_HINT,
    },
    ForeignField {
        missing_in: V1BETA4,
        kind: "ClusterConfiguration",
        path: "apiServer.extraArgs[].mergeMethod",
        hint: MERGE_METHOD_HINT,
    },
    ForeignField {
        missing_in: V1BETA4,
        kind: "ClusterConfiguration",
        path: "controllerManager.extraArgs[].mergeMethod",
        hint: MERGE_METHOD_HINT,
    },
    ForeignField {
        missing_in: V1BETA4,
        kind: "ClusterConfiguration",
        path: "scheduler.extraArgs[].mergeMethod",
        hint: MERGE_METHOD_HINT,
    },
    ForeignField {
        missing_in: V1BETA4,
        kind: "ClusterConfiguration",
        path: "etcd.local.extraArgs[].mergeMethod",
        hint: MERGE_METHOD_HINT,
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "InitConfiguration",
        path: "timeouts",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; in v1beta3 the control-plane wait is \
               the ClusterConfiguration's apiServer.timeoutForControlPlane",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "JoinConfiguration",
        path: "timeouts",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; in v1beta3 the discovery wait is \
               discovery.timeout",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "InitConfiguration",
        path: "dryRun",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; pass --dry-run instead",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "JoinConfiguration",
        path: "dryRun",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; pass --dry-run instead",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "InitConfiguration",
        path: "nodeRegistration.imagePullSerial",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; v1beta3 pulls images one at a time",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "JoinConfiguration",
        path: "nodeRegistration.imagePullSerial",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; v1beta3 pulls images one at a time",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "encryptionAlgorithm",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; in v1beta3 `featureGates: \
               {PublicKeysECDSA: true}` selects ECDSA-P256 keys",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "certificateValidityPeriod",
        hint: VALIDITY_HINT,
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "caCertificateValidityPeriod",
        hint: VALIDITY_HINT,
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "proxy",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; in v1beta3 skip the addon/kube-proxy \
               phase instead (skipPhases in the InitConfiguration)",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "dns.disabled",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; in v1beta3 skip the addon/coredns \
               phase instead (skipPhases in the InitConfiguration)",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "etcd.external.httpEndpoints",
        hint: "it exists from kubeadm.k8s.io/v1beta4 on; v1beta3 uses etcd.external.endpoints \
               for the HTTP checks too",
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "apiServer.extraEnvs",
        hint: EXTRA_ENVS_HINT,
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "controllerManager.extraEnvs",
        hint: EXTRA_ENVS_HINT,
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "scheduler.extraEnvs",
        hint: EXTRA_ENVS_HINT,
    },
    ForeignField {
        missing_in: V1BETA3,
        kind: "ClusterConfiguration",
        path: "etcd.local.extraEnvs",
        hint: EXTRA_ENVS_HINT,
    },
];

/// Where each kind keeps extra command-line arguments.
const EXTRA_ARGS: &[(&str, &str)] = &[
    ("InitConfiguration", "nodeRegistration.kubeletExtraArgs"),
    ("JoinConfiguration", "nodeRegistration.kubeletExtraArgs"),
    ("ClusterConfiguration", "apiServer.extraArgs"),
    ("ClusterConfiguration", "controllerManager.extraArgs"),
    ("ClusterConfiguration", "scheduler.extraArgs"),
    ("ClusterConfiguration", "etcd.local.extraArgs"),
];

/// Every problem of these two sorts the document has, one sentence each; empty when it has
/// none (its decoding failed for another reason).
pub(super) fn hints(api: ConfigApi, kind: &str, document: &Map<String, Value>) -> Vec<String> {
    let document = Value::Object(document.clone());
    let group_version = api.group_version();
    let mut hints = Vec::new();
    for &(_, path) in EXTRA_ARGS.iter().filter(|(k, _)| *k == kind) {
        for (found, value) in find(&document, path) {
            match (api, value) {
                (ConfigApi::V1beta3, Value::Array(_)) => hints.push(format!(
                    "{found} is a list, but {group_version} writes extra arguments as a map of \
                     name: value (lists of name/value pairs are kubeadm.k8s.io/v1beta4's)"
                )),
                (ConfigApi::V1beta4 | ConfigApi::V1, Value::Object(args)) => {
                    let example = args.iter().next().map_or_else(
                        || "name: audit-log-path, value: /var/log/audit.log".to_owned(),
                        |(name, value)| format!("name: {name}, value: {}", scalar_text(value)),
                    );
                    hints.push(format!(
                        "{found} is a map, but {group_version} writes extra arguments as a list \
                         of name/value pairs, e.g. `- {{{example}}}` (maps are \
                         kubeadm.k8s.io/v1beta3's)"
                    ));
                }
                _ => {}
            }
        }
    }
    for field in FOREIGN_FIELDS
        .iter()
        .filter(|field| field.kind == kind && field.missing_in.contains(&api))
    {
        for (found, _) in find(&document, field.path) {
            hints.push(format!(
                "{group_version} {kind} has no field {found}: {}",
                field.hint
            ));
        }
    }
    hints
}

/// The values at `path` (`[]` matching every list item), each with its concrete path
/// (`apiServer.extraArgs[0].mergeMethod`).
fn find<'a>(value: &'a Value, path: &str) -> Vec<(String, &'a Value)> {
    let mut found = vec![(String::new(), value)];
    for segment in path.split('.') {
        let (key, every_item) = match segment.strip_suffix("[]") {
            Some(key) => (key, true),
            None => (segment, false),
        };
        found = found
            .into_iter()
            .filter_map(|(at, value)| {
                let child = value.as_object()?.get(key)?;
                let at = if at.is_empty() {
                    key.to_owned()
                } else {
                    format!("{at}.{key}")
                };
                Some((at, child))
            })
            .flat_map(|(at, child)| match (every_item, child) {
                (true, Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| (format!("{at}[{index}]"), item))
                    .collect(),
                (true, _) => Vec::new(),
                (false, child) => vec![(at, child)],
            })
            .collect();
    }
    found
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints_for(api: ConfigApi, kind: &str, document: Value) -> Vec<String> {
        hints(api, kind, document.as_object().unwrap())
    }

    #[test]
    fn v1beta3_fields_in_v1beta4_name_the_version_that_has_them() {
        let hints = hints_for(
            ConfigApi::V1beta4,
            "ClusterConfiguration",
            serde_json::json!({"apiServer": {"timeoutForControlPlane": "4m0s"}}),
        );
        assert_eq!(
            hints,
            ["kubeadm.k8s.io/v1beta4 ClusterConfiguration has no field \
              apiServer.timeoutForControlPlane: it exists only in kubeadm.k8s.io/v1beta3; from \
              v1beta4 on the control-plane wait is the InitConfiguration's \
              timeouts.controlPlaneComponentHealthCheck"]
        );
        let hints = hints_for(
            ConfigApi::V1beta4,
            "ClusterConfiguration",
            serde_json::json!({"scheduler": {"extraArgs": [
                {"name": "a", "value": "b"},
                {"name": "c", "value": "d", "mergeMethod": "append"}
            ]}}),
        );
        assert_eq!(hints.len(), 1);
        assert!(
            hints[0].contains(
                "no field scheduler.extraArgs[1].mergeMethod: it exists only in \
                 kubeadm.k8s.io/v1 "
            ),
            "{hints:?}"
        );
        let hints = hints_for(
            ConfigApi::V1,
            "ClusterConfiguration",
            serde_json::json!({"scheduler": {"extraArgs": [{"mergeMethod": "append"}]}}),
        );
        assert!(hints.is_empty(), "v1 has mergeMethod: {hints:?}");
    }

    #[test]
    fn v1beta4_fields_in_v1beta3() {
        let hints = hints_for(
            ConfigApi::V1beta3,
            "ClusterConfiguration",
            serde_json::json!({
                "proxy": {"disabled": true},
                "etcd": {"local": {"extraEnvs": []}},
                "apiServer": {"extraArgs": [{"name": "a", "value": "b"}]}
            }),
        );
        assert_eq!(hints.len(), 3, "{hints:?}");
        assert!(
            hints[0].starts_with("apiServer.extraArgs is a list, but kubeadm.k8s.io/v1beta3"),
            "{hints:?}"
        );
        assert!(hints[1].contains("no field proxy: "), "{hints:?}");
        assert!(
            hints[2].contains("no field etcd.local.extraEnvs: "),
            "{hints:?}"
        );
    }

    #[test]
    fn maps_of_extra_arguments_in_v1beta4_show_the_list_to_write() {
        let hints = hints_for(
            ConfigApi::V1beta4,
            "InitConfiguration",
            serde_json::json!({"nodeRegistration": {"kubeletExtraArgs": {"v": 4}}}),
        );
        assert_eq!(
            hints,
            [
                "nodeRegistration.kubeletExtraArgs is a map, but kubeadm.k8s.io/v1beta4 writes \
              extra arguments as a list of name/value pairs, e.g. `- {name: v, value: 4}` (maps \
              are kubeadm.k8s.io/v1beta3's)"
            ]
        );
    }
}
