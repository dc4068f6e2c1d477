//! `describe()` asks for far more than the grant holds, and tries a write while describing. If
//! it were ever run, `run()` would write a marker.

use kubeforge_sdk::{Guest, KubeRule, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        let _ = fs::write("pki", "written-by-describe", b"owned\n", 0o644);
        let mut info = hostile_common::info(
            "greedy-describe",
            &[("pki", true), ("kubeconfig", true), ("tmp", false)],
            &[],
        );
        info.requests.pki_sign = vec!["ca".into(), "etcd-ca".into()];
        info.requests.pki_create = vec!["ca".into()];
        info.requests.node_paths = vec!["/etc/shadow".into()];
        info.requests.kube = vec![KubeRule {
            verbs: vec!["create".into()],
            resources: vec!["secrets".into()],
            namespaces: vec!["kube-system".into()],
        }];
        info
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        fs::write("pki", "greedy-ran", b"owned\n", 0o644)?;
        Ok(PhaseReport { outputs: vec![] })
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
