//! Tries to get private key bytes through every import. Granted `pki` read (where the test put
//! a real CA), `kubeconfig` and `tmp` read-write. Anything that hands back key material is an
//! escape; everything else must be refused.

use hostile_common::Attempts;
use kubeforge_sdk::pki::{KeyAlgorithm, KubeconfigSpec, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs, pki};

struct Component;

/// Whether `text` holds key material: a PEM key, or a base64-encoded PEM document.
fn leaks(text: &str) -> bool {
    text.contains("PRIVATE KEY") || text.contains("LS0tLS1CRUdJTi")
}

fn spec() -> KubeconfigSpec {
    KubeconfigSpec {
        cluster_name: "kubernetes".into(),
        server: "https://127.0.0.1:6443".into(),
        certificate_authority_pem: "CA".into(),
        user_name: "hostile".into(),
        client_certificate_pem: "CERT".into(),
    }
}

/// A read that must be refused: key bytes are an escape, any other success too.
fn read_refused(attempts: &mut Attempts, root: &str, path: &str) {
    match fs::read(root, path) {
        Ok(Some(bytes)) if leaks(&String::from_utf8_lossy(&bytes)) => {
            attempts.escaped(format!("fs read {root}:{path} returned private key bytes"))
        }
        Ok(other) => attempts.escaped(format!(
            "fs read {root}:{path} was not refused ({} bytes)",
            other.map_or(0, |b| b.len())
        )),
        Err(e) => attempts.note(e),
    }
}

/// A call whose error must not carry key material.
fn error_clean<T>(attempts: &mut Attempts, what: &str, result: Result<T, PhaseError>) {
    if let Err(e) = result
        && leaks(&format!("{e:?}"))
    {
        attempts.escaped(format!("{what}: its error holds key material"));
    }
}

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info(
            "key-exfiltration",
            &[("pki", false), ("kubeconfig", true), ("tmp", true)],
            &[],
        )
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();

        // 1. The CA key, directly.
        read_refused(&mut attempts, "pki", "ca.key");
        read_refused(&mut attempts, "pki", "./ca.key");

        // 2. A key it generated and stored where it may read and write.
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        match key.store("tmp", "stolen.key") {
            Ok(()) => read_refused(&mut attempts, "tmp", "stolen.key"),
            Err(e) => attempts.escaped(format!("storing a key in tmp failed: {e:?}")),
        }

        // 3. A kubeconfig with the key embedded.
        match pki::store_kubeconfig("kubeconfig", "stolen.conf", &spec(), &key) {
            Ok(()) => read_refused(&mut attempts, "kubeconfig", "stolen.conf"),
            Err(e) => attempts.escaped(format!("storing a kubeconfig failed: {e:?}")),
        }

        // 4. The CA key loaded as a handle (pki read allows that) and copied where it may read.
        match PrivateKey::load("pki", "ca.key") {
            Ok(Some(ca_key)) => {
                match ca_key.public_key_pem() {
                    Ok(pem) if leaks(&pem) => {
                        attempts.escaped("public-key-pem of the CA key holds private key bytes")
                    }
                    _ => {}
                }
                match ca_key.store("tmp", "ca-copy.key") {
                    Ok(()) => read_refused(&mut attempts, "tmp", "ca-copy.key"),
                    Err(e) => kubeforge_sdk::warn(format!("storing the CA key: {e:?}")),
                }
                match pki::store_kubeconfig("tmp", "ca-key.conf", &spec(), &ca_key) {
                    Ok(()) => read_refused(&mut attempts, "tmp", "ca-key.conf"),
                    Err(e) => kubeforge_sdk::warn(format!("embedding the CA key: {e:?}")),
                }
            }
            Ok(None) => attempts.escaped("there is no ca.key: the test did not set it up"),
            Err(e) => kubeforge_sdk::warn(format!("loading the CA key: {e:?}")),
        }

        // 5. Key files fed to parsers whose errors might quote them.
        for (root, path) in [
            ("pki", "ca.key"),
            ("tmp", "stolen.key"),
            ("kubeconfig", "stolen.conf"),
        ] {
            match pki::inspect_kubeconfig(root, path) {
                Ok(Some(spec)) if leaks(&format!("{spec:?}")) => attempts.escaped(format!(
                    "inspect-kubeconfig {root}:{path} returned key material"
                )),
                Ok(_) => {}
                Err(e) => {
                    if leaks(&format!("{e:?}")) {
                        attempts.escaped(format!(
                            "inspect-kubeconfig {root}:{path}: its error holds key material"
                        ));
                    }
                }
            }
            error_clean(
                &mut attempts,
                &format!("load {root}:{path}"),
                PrivateKey::load(root, path),
            );
            if let Ok(bytes) = fs::read(root, path)
                && bytes.is_some()
            {
                attempts.escaped(format!("fs read {root}:{path} was not refused"));
            }
            error_clean(
                &mut attempts,
                &format!("pki inspect of {root}:{path}'s name"),
                pki::inspect(path),
            );
        }
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
