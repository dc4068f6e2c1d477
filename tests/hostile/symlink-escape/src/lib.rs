//! Granted `pki` read-write, in which the test planted `outside` (a symlink to a directory
//! outside the root) and `victim.crt` (a symlink to a file outside it): writes, reads and removes
//! through them.

use hostile_common::Attempts;
use kubeforge_sdk::pki::{KeyAlgorithm, KubeconfigSpec, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs, pki};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("symlink-escape", &[("pki", true)], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();
        attempts.refused(
            "write pki:outside/planted",
            fs::write("pki", "outside/planted", b"owned\n", 0o644),
        );
        attempts.refused(
            "write pki:victim.crt",
            fs::write("pki", "victim.crt", b"owned\n", 0o644),
        );
        attempts.refused("read pki:victim.crt", fs::read("pki", "victim.crt"));
        attempts.refused(
            "read pki:outside/victim.txt",
            fs::read("pki", "outside/victim.txt"),
        );
        attempts.refused(
            "create-dir pki:outside/sub",
            fs::create_dir("pki", "outside/sub", 0o755),
        );
        attempts.refused(
            "remove pki:outside/victim.txt",
            fs::remove("pki", "outside/victim.txt"),
        );
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        attempts.refused(
            "pki store pki:outside/stolen.key",
            key.store("pki", "outside/stolen.key"),
        );
        attempts.refused(
            "store-kubeconfig pki:outside/stolen.conf",
            pki::store_kubeconfig(
                "pki",
                "outside/stolen.conf",
                &KubeconfigSpec {
                    cluster_name: "kubernetes".into(),
                    server: "https://127.0.0.1:6443".into(),
                    certificate_authority_pem: "CA".into(),
                    user_name: "hostile".into(),
                    client_certificate_pem: "CERT".into(),
                },
                &key,
            ),
        );
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
