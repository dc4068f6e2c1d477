//! Building the capability request a phase's `describe()` returns: start from [`none`] and name
//! only what the phase needs, e.g.
//! `CapabilityRequest { fs: vec![read("kubeconfig")], ..requests::none() }`.

use crate::{CapabilityRequest, FsRequest, KubeRule};

/// A request for nothing.
pub fn none() -> CapabilityRequest {
    CapabilityRequest {
        fs: vec![],
        pki_sign: vec![],
        pki_create: vec![],
        pki_seal: false,
        kube: vec![],
        node_paths: vec![],
        node_services: vec![],
        node_probes: vec![],
    }
}

/// Read access to the fs root `root`.
pub fn read(root: &str) -> FsRequest {
    FsRequest {
        root: root.into(),
        writable: false,
    }
}

/// Read-write access to the fs root `root`.
pub fn read_write(root: &str) -> FsRequest {
    FsRequest {
        root: root.into(),
        writable: true,
    }
}

/// A kube rule: `verbs` on `resources` (`group/resource`, or `resource` for the core group) in
/// `namespaces` (empty for cluster-scoped resources).
pub fn rule(verbs: &[&str], resources: &[&str], namespaces: &[&str]) -> KubeRule {
    let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
    KubeRule {
        verbs: owned(verbs),
        resources: owned(resources),
        namespaces: owned(namespaces),
    }
}

/// Owned strings, for the lists of a request.
pub fn names(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
