//! kubeforge's own kind, `kubeforge.dev/v1alpha1 PhaseConfiguration` (a "profile"): which
//! component fills which phase slot, added slots, and the grants of non-stock components.
//!
//! ```yaml
//! apiVersion: kubeforge.dev/v1alpha1
//! kind: PhaseConfiguration
//! phases:
//! - slot: addon/coredns
//!   component: builtin:kube-dns
//! - slot: addon/metrics-server
//!   after: addon/kube-proxy
//!   component: file:metrics-server.wasm   # relative to the config file
//!   sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
//!   grant:
//!     kube:
//!     - verbs: [apply]
//!       resources: [serviceaccounts, apps/deployments]
//!       namespaces: [kube-system]
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::capabilities::kube::KubeRule;
use crate::capabilities::{Access, Grant};

/// The document as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhaseConfiguration {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub phases: Vec<PhaseEntry>,
}

/// One slot: filled differently, or added.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PhaseEntry {
    /// `phase` or `phase/sub-phase`, e.g. `addon/coredns`.
    pub slot: String,
    /// `builtin:<name>` or `file:<path>` (relative paths are taken from the config file's
    /// directory).
    pub component: String,
    /// The hex SHA-256 of a `file:` component; required for them.
    #[serde(default)]
    pub sha256: Option<String>,
    /// For an added slot: the slot it runs after.
    #[serde(default)]
    pub after: Option<String>,
    /// What a `file:` component may touch; stock components run under their reviewed grants.
    #[serde(default)]
    pub grant: Option<GrantSpec>,
}

/// A grant as the operator writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GrantSpec {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fs: Vec<FsGrant>,
    #[serde(default, skip_serializing_if = "PkiGrant::is_empty")]
    pub pki: PkiGrant,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kube: Vec<KubeGrant>,
    #[serde(default, skip_serializing_if = "NodeGrant::is_empty")]
    pub node: NodeGrant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FsGrant {
    pub root: String,
    pub access: FsAccess,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FsAccess {
    Read,
    ReadWrite,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PkiGrant {
    /// CAs the component may sign with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign: Vec<String>,
    /// CAs the component may create.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub create: Vec<String>,
    /// Whether it may encrypt files for the kubeadm-certs Secret.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub seal: bool,
}

impl PkiGrant {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KubeGrant {
    pub verbs: Vec<String>,
    pub resources: Vec<String>,
    /// Empty for cluster-scoped resources; `*` for every namespace.
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeGrant {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<String>,
}

impl NodeGrant {
    fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl From<&GrantSpec> for Grant {
    fn from(spec: &GrantSpec) -> Self {
        Grant {
            fs: spec
                .fs
                .iter()
                .map(|fs| {
                    let access = match fs.access {
                        FsAccess::Read => Access::Read,
                        FsAccess::ReadWrite => Access::ReadWrite,
                    };
                    (fs.root.clone(), access)
                })
                .fold(BTreeMap::new(), |mut roots, (root, access)| {
                    let granted = roots.entry(root).or_insert(access);
                    *granted = (*granted).max(access);
                    roots
                }),
            pki_sign: spec.pki.sign.clone(),
            pki_create: spec.pki.create.clone(),
            pki_seal: spec.pki.seal,
            node_paths: spec.node.paths.clone(),
            node_services: spec.node.services.clone(),
            node_probes: spec.node.probes.clone(),
            kube: spec
                .kube
                .iter()
                .map(|rule| KubeRule {
                    verbs: rule.verbs.clone(),
                    resources: rule.resources.clone(),
                    namespaces: rule.namespaces.clone(),
                })
                .collect(),
        }
    }
}

impl From<&Grant> for GrantSpec {
    fn from(grant: &Grant) -> Self {
        GrantSpec {
            fs: grant
                .fs
                .iter()
                .map(|(root, access)| FsGrant {
                    root: root.clone(),
                    access: match access {
                        Access::Read => FsAccess::Read,
                        Access::ReadWrite => FsAccess::ReadWrite,
                    },
                })
                .collect(),
            pki: PkiGrant {
                sign: grant.pki_sign.clone(),
                create: grant.pki_create.clone(),
                seal: grant.pki_seal,
            },
            kube: grant
                .kube
                .iter()
                .map(|rule| KubeGrant {
                    verbs: rule.verbs.clone(),
                    resources: rule.resources.clone(),
                    namespaces: rule.namespaces.clone(),
                })
                .collect(),
            node: NodeGrant {
                paths: grant.node_paths.clone(),
                services: grant.node_services.clone(),
                probes: grant.node_probes.clone(),
            },
        }
    }
}

impl GrantSpec {
    /// The grant as YAML lines for a profile, indented by `indent` spaces.
    pub fn to_profile_yaml(&self, indent: usize) -> String {
        let value = serde_json::to_value(self).expect("a grant is plain data");
        kubeforge_api::yaml::to_string(&serde_json::json!({ "grant": value }))
            .lines()
            .map(|line| format!("{}{line}\n", " ".repeat(indent)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_read_from_a_profile_and_print_back() {
        let spec: GrantSpec = serde_saphyr::from_str(
            "fs:\n- {root: pki, access: read}\n- {root: pki, access: read-write}\npki: {sign: [ca]}\nkube:\n- verbs: [apply]\n  resources: [apps/deployments]\n  namespaces: [kube-system]\nnode: {probes: ['https://*/livez']}\n",
        )
        .unwrap();
        let grant = Grant::from(&spec);
        assert_eq!(grant.fs.get("pki"), Some(&Access::ReadWrite));
        assert_eq!(grant.pki_sign, ["ca"]);
        assert!(grant.allows_kube("apply", "apps/deployments", Some("kube-system")));
        assert!(!grant.allows_kube("apply", "apps/deployments", Some("default")));
        let yaml = GrantSpec::from(&grant).to_profile_yaml(2);
        assert!(yaml.starts_with("  grant:\n"), "{yaml}");
        let reread: serde_json::Value = serde_saphyr::from_str(&yaml).unwrap();
        let reread: GrantSpec = serde_json::from_value(reread["grant"].clone()).unwrap();
        assert_eq!(Grant::from(&reread), grant);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let error = serde_saphyr::from_str::<GrantSpec>("kube:\n- verb: [apply]\n").unwrap_err();
        assert!(error.to_string().contains("verb"), "{error}");
    }
}
