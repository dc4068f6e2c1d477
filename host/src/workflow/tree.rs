//! The slots of `init`, in kubeadm's order, and how a profile (PhaseConfiguration) refills them
//! or adds new ones.
//!
//! A slot is `phase` or `phase/sub-phase`: `addon` is a group whose slots `addon/coredns` and
//! `addon/kube-proxy` each hold their own component, so a profile can swap one addon without
//! touching the other. `init phase addon` runs the group; `init phase addon coredns` one slot.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use crate::capabilities::Grant;
use crate::config::profile::{PhaseConfiguration, PhaseEntry};
use crate::runtime::digest;
use crate::workflow::stock;

/// What fills a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filling {
    /// A component built into kubeforge, under its reviewed grant.
    Builtin(String),
    /// A component file named by a profile, pinned by digest, under the profile's grant.
    File {
        path: PathBuf,
        sha256: String,
        grant: Grant,
    },
    /// Nothing in this build: `init` reports it and goes on.
    Unavailable,
}

impl Filling {
    /// How a profile names it.
    pub fn source(&self) -> Option<String> {
        match self {
            Filling::Builtin(name) => Some(format!("builtin:{name}")),
            Filling::File { path, .. } => Some(format!("file:{}", path.display())),
            Filling::Unavailable => None,
        }
    }
}

/// One slot of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub name: String,
    pub description: String,
    pub filling: Filling,
}

impl Slot {
    /// The top-level phase the slot belongs to (`addon` for `addon/coredns`).
    pub fn phase(&self) -> &str {
        self.name.split('/').next().unwrap_or(&self.name)
    }

    /// The slot's name within its phase (`coredns` for `addon/coredns`), if it is in a group.
    pub fn member(&self) -> Option<&str> {
        self.name.split_once('/').map(|(_, member)| member)
    }
}

/// kubeadm's `init` phases with their descriptions, in order; `addon` is a group.
const PHASES: &[(&str, &str)] = &[
    ("preflight", "Run pre-flight checks"),
    ("certs", "Certificate generation"),
    (
        "kubeconfig",
        "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file",
    ),
    ("etcd", "Generate static Pod manifest file for local etcd"),
    (
        "control-plane",
        "Generate all static Pod manifest files necessary to establish the control plane",
    ),
    (
        "kubelet-start",
        "Write kubelet settings and (re)start the kubelet",
    ),
    ("wait-control-plane", "Wait for the control plane to start"),
    (
        "upload-config",
        "Upload the kubeadm and kubelet configuration to a ConfigMap",
    ),
    ("upload-certs", "Upload certificates to kubeadm-certs"),
    ("mark-control-plane", "Mark a node as a control-plane"),
    (
        "bootstrap-token",
        "Generates bootstrap tokens used to join a node to a cluster",
    ),
    (
        "kubelet-finalize",
        "Updates settings relevant to the kubelet after TLS bootstrap",
    ),
    (
        "addon",
        "Install required addons for passing conformance tests",
    ),
    (
        "show-join-command",
        "Show the join command for control-plane and worker node",
    ),
];

/// The top-level phases of `init`: name and description.
pub fn phases() -> impl Iterator<Item = (&'static str, &'static str)> {
    PHASES.iter().copied()
}

/// kubeadm's tree, filled with the stock components.
pub fn stock_slots() -> Vec<Slot> {
    let mut slots = Vec::new();
    for (phase, description) in PHASES {
        match *phase {
            "preflight" => slots.push(Slot {
                name: phase.to_string(),
                description: description.to_string(),
                filling: Filling::Unavailable,
            }),
            "addon" => {
                for (member, description) in [
                    (
                        "coredns",
                        "Install the CoreDNS addon to a Kubernetes cluster",
                    ),
                    (
                        "kube-proxy",
                        "Install the kube-proxy addon to a Kubernetes cluster",
                    ),
                ] {
                    slots.push(Slot {
                        name: format!("{phase}/{member}"),
                        description: description.to_string(),
                        filling: Filling::Builtin(member.to_string()),
                    });
                }
            }
            _ => slots.push(Slot {
                name: phase.to_string(),
                description: description.to_string(),
                filling: Filling::Builtin(phase.to_string()),
            }),
        }
    }
    slots
}

/// The tree for `profile`: kubeadm's, with the profile's slots refilled or added. Relative
/// `file:` paths are taken from `base` (the config file's directory).
pub fn slots_for(profile: Option<&PhaseConfiguration>, base: Option<&Path>) -> Result<Vec<Slot>> {
    let mut slots = stock_slots();
    let Some(profile) = profile else {
        return Ok(slots);
    };
    for (index, entry) in profile.phases.iter().enumerate() {
        let field = |name: &str| format!("PhaseConfiguration phases[{index}].{name}");
        let filling = filling(entry, base, &field)?;
        let existing = slots.iter().position(|slot| slot.name == entry.slot);
        match (existing, &entry.after) {
            (Some(at), None) => slots[at].filling = filling,
            (Some(_), Some(_)) => bail!(
                "{}: slot {:?} already exists; `after` only places a new slot (remove `after` to refill it)",
                field("after"),
                entry.slot
            ),
            (None, None) => bail!(
                "{}: there is no slot {:?}; the slots are: {}. To add a slot, say which one it runs after with `after:`",
                field("slot"),
                entry.slot,
                slots
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, Some(after)) => {
                check_slot_name(&entry.slot, &field("slot"))?;
                // After a group: after its last slot.
                let Some(at) = slots
                    .iter()
                    .rposition(|s| s.name == *after || s.phase() == after)
                else {
                    bail!(
                        "{}: there is no slot {after:?} to run after; the slots are: {}",
                        field("after"),
                        slots
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                slots.insert(
                    at + 1,
                    Slot {
                        name: entry.slot.clone(),
                        description: format!("Run {}", filling.source().unwrap_or_default()),
                        filling,
                    },
                );
            }
        }
    }
    Ok(slots)
}

/// A new slot's name: `phase` or `phase/member`, each a DNS label.
fn check_slot_name(name: &str, field: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.split('/').count() <= 2
        && name.split('/').all(kubeforge_api::net::is_dns1123_label);
    if !valid {
        bail!(
            "{field}: {name:?} is not a slot name; use `phase` or `phase/member`, lower-case letters, digits and '-'"
        );
    }
    Ok(())
}

/// What `entry` fills its slot with.
fn filling(
    entry: &PhaseEntry,
    base: Option<&Path>,
    field: &dyn Fn(&str) -> String,
) -> Result<Filling> {
    if let Some(name) = entry.component.strip_prefix("builtin:") {
        if stock::component(name).is_none() {
            bail!(
                "{}: there is no built-in component {name:?}; the built-in components are: {}",
                field("component"),
                stock::names().join(", ")
            );
        }
        if entry.grant.is_some() || entry.sha256.is_some() {
            bail!(
                "{}: built-in components run under their reviewed grant and digest; remove `grant` and `sha256` from this entry",
                field("component")
            );
        }
        return Ok(Filling::Builtin(name.to_string()));
    }
    let Some(file) = entry.component.strip_prefix("file:") else {
        bail!(
            "{}: {:?} names no component; use `builtin:<name>` or `file:<path>`",
            field("component"),
            entry.component
        );
    };
    let Some(sha256) = entry.sha256.as_deref() else {
        bail!(
            "{}: a file: component must be pinned by its digest; add `sha256: <hex>` (`kubeforge component inspect {file}` prints it)",
            field("sha256")
        );
    };
    let sha256 = sha256.trim_start_matches("sha256:").to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{}: {sha256:?} is not a hex SHA-256 digest (64 hex digits)",
            field("sha256")
        );
    }
    let path = match base {
        Some(base) if Path::new(file).is_relative() => base.join(file),
        _ => PathBuf::from(file),
    };
    Ok(Filling::File {
        path,
        sha256,
        grant: entry.grant.as_ref().map(Grant::from).unwrap_or_default(),
    })
}

/// A `file:` component's bytes, refused unless they have the profile's digest.
pub fn read_pinned(path: &Path, sha256: &str) -> Result<Vec<u8>> {
    let wasm = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("reading the component {}: {e}", path.display()))?;
    let actual = digest(&wasm);
    if actual.trim_start_matches("sha256:") != sha256 {
        bail!(
            "refusing the component {}: its digest is {actual}, but the profile pins sha256:{sha256}. \
             If this version is the one you reviewed, set its `sha256` in the PhaseConfiguration",
            path.display()
        );
    }
    Ok(wasm)
}

/// Check `--skip-phases` entries against the tree.
pub fn validate_skip_phases(slots: &[Slot], skip: &[String]) -> Result<()> {
    for entry in skip {
        let phase = entry.split('/').next().unwrap_or_default();
        if !slots.iter().any(|slot| slot.phase() == phase) {
            bail!(
                "--skip-phases: unknown phase {entry:?}; the phases are: {}",
                top_level(slots).join(", ")
            );
        }
    }
    Ok(())
}

/// The top-level phase names of `slots`, in order.
pub fn top_level(slots: &[Slot]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for slot in slots {
        if !names.contains(&slot.phase()) {
            names.push(slot.phase());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(yaml: &str) -> PhaseConfiguration {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn the_stock_tree_is_kubeadm_s_with_addons_as_slots() {
        let slots = stock_slots();
        let names: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names[..3], ["preflight", "certs", "kubeconfig"]);
        assert!(names.ends_with(&["addon/coredns", "addon/kube-proxy", "show-join-command"]));
        assert_eq!(top_level(&slots).len(), PHASES.len());
    }

    #[test]
    fn a_profile_refills_and_adds_slots() {
        let sha = "ab".repeat(32);
        let slots = slots_for(
            Some(&profile(&format!(
                "apiVersion: kubeforge.dev/v1alpha1\nkind: PhaseConfiguration\nphases:\n\
                 - slot: addon/metrics\n  after: addon/kube-proxy\n  component: file:m.wasm\n  sha256: sha256:{sha}\n  grant:\n    kube:\n    - verbs: [apply]\n      resources: [services]\n      namespaces: [kube-system]\n\
                 - slot: late\n  after: addon\n  component: file:/abs/late.wasm\n  sha256: {sha}\n"
            ))),
            Some(Path::new("/etc/kf")),
        )
        .unwrap();
        let names: Vec<&str> = slots.iter().map(|s| s.name.as_str()).collect();
        assert!(names.ends_with(&[
            "addon/coredns",
            "addon/kube-proxy",
            "addon/metrics",
            "late",
            "show-join-command"
        ]));
        let Filling::File { path, grant, .. } = &slots[names.len() - 3].filling else {
            panic!("a file slot");
        };
        assert_eq!(path, Path::new("/etc/kf/m.wasm"));
        assert!(grant.allows_kube("apply", "services", Some("kube-system")));
    }

    #[test]
    fn profile_mistakes_name_the_field() {
        let error = |yaml: &str| {
            slots_for(Some(&profile(yaml)), None)
                .unwrap_err()
                .to_string()
        };
        let head = "apiVersion: kubeforge.dev/v1alpha1\nkind: PhaseConfiguration\nphases:\n";
        let e = error(&format!(
            "{head}- slot: addon/x\n  component: builtin:coredns\n"
        ));
        assert!(e.contains("phases[0].slot") && e.contains("after:"), "{e}");
        let e = error(&format!(
            "{head}- slot: addon/x\n  after: addon\n  component: file:x.wasm\n"
        ));
        assert!(e.contains("phases[0].sha256"), "{e}");
        let e = error(&format!("{head}- slot: certs\n  component: builtin:nope\n"));
        assert!(
            e.contains("phases[0].component") && e.contains("coredns"),
            "{e}"
        );
        let e = error(&format!(
            "{head}- slot: x\n  after: nowhere\n  component: builtin:certs\n"
        ));
        assert!(e.contains("phases[0].after"), "{e}");
    }
}
