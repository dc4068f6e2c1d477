//! Granted `pki` read-write but no CA: replaces the CAs' files through every call that writes
//! or removes a file. A CA is never overwritten, whatever the fs grant says.

use hostile_common::Attempts;
use kubeforge_sdk::pki::{KeyAlgorithm, KubeconfigSpec, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs, pki};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("ca-clobber", &[("pki", true)], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let spec = KubeconfigSpec {
            cluster_name: "kubernetes".into(),
            server: "https://127.0.0.1:6443".into(),
            certificate_authority_pem: "CA".into(),
            user_name: "hostile".into(),
            client_certificate_pem: "CERT".into(),
        };
        attempts.refused(
            "store-kubeconfig pki:ca.crt",
            pki::store_kubeconfig("pki", "ca.crt", &spec, &key),
        );
        attempts.refused(
            "store-kubeconfig pki:ca.key",
            pki::store_kubeconfig("pki", "ca.key", &spec, &key),
        );
        attempts.refused("store pki:ca.key", key.store("pki", "ca.key"));
        attempts.refused("store pki:etcd/ca.key", key.store("pki", "etcd/ca.key"));
        attempts.refused(
            "write pki:ca.crt",
            fs::write("pki", "ca.crt", b"owned\n", 0o644),
        );
        attempts.refused(
            "write pki:etcd/ca.key",
            fs::write("pki", "etcd/ca.key", b"owned\n", 0o600),
        );
        attempts.refused("remove pki:ca.crt", fs::remove("pki", "ca.crt"));
        attempts.refused("remove pki:ca.key", fs::remove("pki", "ca.key"));
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
