//! Granted signing with `ca` only (no fs, no CA creation): signs with the etcd and front-proxy
//! CAs (sub-phase `sign`) and creates CAs (sub-phase `create`).

use hostile_common::Attempts;
use kubeforge_sdk::pki::{Authority, CertificateSpec, ExtKeyUsage, KeyAlgorithm, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

fn spec(name: &str) -> CertificateSpec {
    CertificateSpec {
        common_name: name.into(),
        organizations: vec!["system:masters".into()],
        dns_names: vec![],
        ip_addresses: vec![],
        ext_key_usages: vec![ExtKeyUsage::ClientAuth, ExtKeyUsage::ServerAuth],
        validity_seconds: 10 * 365 * 24 * 3600,
    }
}

impl Guest for Component {
    fn describe() -> PhaseInfo {
        let mut info = hostile_common::info("ungranted-ca", &[], &["sign", "create"]);
        info.requests.pki_sign = vec!["ca".into()];
        info
    }

    fn run(_: PhaseContext, sub_phase: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        match sub_phase.as_deref() {
            Some("sign") => {
                attempts.refused("open CA etcd-ca", Authority::open("etcd-ca"));
                attempts.refused("open CA front-proxy-ca", Authority::open("front-proxy-ca"));
                attempts.refused(
                    "load pki:etcd/ca.key as a key handle",
                    PrivateKey::load("pki", "etcd/ca.key"),
                );
                // The granted CA still works: the denial is per CA, not a blanket refusal.
                match Authority::open("ca") {
                    Ok(Some(ca)) => {
                        if let Err(e) = ca.sign(&spec("hostile"), &key) {
                            attempts.note(e);
                        }
                    }
                    Ok(None) => attempts.note(PhaseError::Failed("no CA ca".into())),
                    Err(e) => attempts.note(e),
                }
            }
            Some("create") => {
                attempts.refused(
                    "create CA front-proxy-ca",
                    Authority::create("front-proxy-ca", &spec("front-proxy-ca"), &key),
                );
                attempts.refused(
                    "create CA etcd-ca",
                    Authority::create("etcd-ca", &spec("etcd-ca"), &key),
                );
                attempts.refused("create CA ca", Authority::create("ca", &spec("ca"), &key));
            }
            other => {
                return Err(PhaseError::Failed(format!("no sub-phase {other:?}")));
            }
        }
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
