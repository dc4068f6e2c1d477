//! Never finishes describing itself: `describe()` runs before the grant check, so it must be
//! bounded by the run's limits too, not only `run()`.

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        let mut counter = 0u64;
        loop {
            counter = std::hint::black_box(counter.wrapping_add(1));
        }
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        Err(PhaseError::Failed("ESCAPED: run() ran".into()))
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
