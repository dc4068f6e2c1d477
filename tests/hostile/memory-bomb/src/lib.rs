//! Allocates (and touches) memory until something stops it.

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("memory-bomb", &[], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            let mut chunk = vec![0u8; 1 << 20];
            for byte in chunk.iter_mut().step_by(4096) {
                *byte = 0xa5;
            }
            hoard.push(std::hint::black_box(chunk));
        }
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
