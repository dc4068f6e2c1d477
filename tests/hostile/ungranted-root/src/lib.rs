//! Granted `pki` read-write and `tmp` read: writes to roots it was not granted, and to the one it
//! may only read.

use hostile_common::Attempts;
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("ungranted-root", &[("pki", true), ("tmp", false)], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();
        attempts.refused(
            "write manifests:kube-apiserver.yaml",
            fs::write("manifests", "kube-apiserver.yaml", b"owned\n", 0o600),
        );
        attempts.refused(
            "write kubeconfig:admin.conf",
            fs::write("kubeconfig", "admin.conf", b"owned\n", 0o600),
        );
        attempts.refused(
            "read kubeconfig:admin.conf",
            fs::read("kubeconfig", "admin.conf"),
        );
        attempts.refused(
            "create-dir etcd-data:",
            fs::create_dir("etcd-data", "", 0o700),
        );
        attempts.refused(
            "remove kubelet:config.yaml",
            fs::remove("kubelet", "config.yaml"),
        );
        attempts.refused(
            "write tmp:owned (read-only grant)",
            fs::write("tmp", "owned", b"owned\n", 0o600),
        );
        attempts.refused("remove tmp:planted", fs::remove("tmp", "planted"));
        attempts.refused(
            "write no-such-root:x",
            fs::write("no-such-root", "x", b"owned\n", 0o600),
        );
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
