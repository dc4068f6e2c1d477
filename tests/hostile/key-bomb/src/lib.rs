//! Asks for RSA-4096 keys without end and never waits for one: each `generate` used to start a
//! host thread, so this spawned threads (and burnt CPU after its deadline) without bound.

use kubeforge_sdk::pki::{KeyAlgorithm, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("key-bomb", &[], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut keys = Vec::new();
        loop {
            keys.push(PrivateKey::generate(KeyAlgorithm::Rsa4096));
        }
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
