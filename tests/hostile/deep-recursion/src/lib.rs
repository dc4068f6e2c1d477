//! Recurses without bound: the wasm call stack must overflow into a trap, not crash the host.

use std::hint::black_box;

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

#[inline(never)]
fn dive(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return 0;
    }
    black_box(dive(black_box(depth + 1))).wrapping_add(depth)
}

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("deep-recursion", &[], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let depth = dive(0);
        Err(PhaseError::Failed(format!(
            "ESCAPED: the recursion returned ({depth})"
        )))
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
