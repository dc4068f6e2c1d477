//! Granted `pki` read-write, tries to leave it with `..` and absolute paths, through every fs
//! and pki call that takes a path.

use hostile_common::Attempts;
use kubeforge_sdk::pki::{KeyAlgorithm, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("path-traversal", &[("pki", true)], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();
        let payload = b"owned\n";
        attempts.refused(
            "write pki:../../escape",
            fs::write("pki", "../../escape", payload, 0o644),
        );
        attempts.refused(
            "write /tmp/kubeforge-hostile-absolute-escape",
            fs::write(
                "pki",
                "/tmp/kubeforge-hostile-absolute-escape",
                payload,
                0o644,
            ),
        );
        attempts.refused(
            "write pki:sub/../../escape",
            fs::write("pki", "sub/../../escape", payload, 0o644),
        );
        attempts.refused(
            "write pki:../../../../../../../../../../tmp/kubeforge-hostile-dotdot-escape",
            fs::write(
                "pki",
                "../../../../../../../../../../tmp/kubeforge-hostile-dotdot-escape",
                payload,
                0o644,
            ),
        );
        attempts.refused(
            "write pki:nul\\0byte",
            fs::write("pki", "nul\0/../../escape", payload, 0o644),
        );
        attempts.refused(
            "create-dir pki:../escape-dir",
            fs::create_dir("pki", "../escape-dir", 0o755),
        );
        attempts.refused("read pki:../admin.conf", fs::read("pki", "../admin.conf"));
        attempts.refused("read /etc/passwd", fs::read("pki", "/etc/passwd"));
        attempts.refused(
            "exists pki:../../../../../../etc/passwd",
            fs::exists("pki", "../../../../../../etc/passwd"),
        );
        attempts.refused("remove pki:../planted", fs::remove("pki", "../planted"));
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        attempts.refused(
            "pki store pki:../../escape.key",
            key.store("pki", "../../escape.key"),
        );
        attempts.refused(
            "pki load /etc/kubernetes/pki/ca.key",
            PrivateKey::load("pki", "/etc/kubernetes/pki/ca.key"),
        );
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
