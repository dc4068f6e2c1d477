//! Spins forever without calling the host: only epoch interruption can stop it.

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("infinite-loop", &[], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut counter = 0u64;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
