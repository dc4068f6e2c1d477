//! Writes one file, then traps: a panic (sub-phase `panic`, which aborts: panic = "abort") or an
//! `unreachable` instruction (sub-phase `unreachable`).

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs};

struct Component;

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info(
            "trap-mid-phase",
            &[("manifests", true)],
            &["panic", "unreachable"],
        )
    }

    fn run(_: PhaseContext, sub_phase: Option<String>) -> Result<PhaseReport, PhaseError> {
        match sub_phase.as_deref() {
            Some("panic") => {
                fs::write(
                    "manifests",
                    "before-panic.yaml",
                    b"written: before the panic\n",
                    0o600,
                )?;
                panic!("hostile component panics mid-phase");
            }
            Some("unreachable") => {
                fs::write(
                    "manifests",
                    "before-unreachable.yaml",
                    b"written: before the trap\n",
                    0o600,
                )?;
                core::arch::wasm32::unreachable()
            }
            other => Err(PhaseError::Failed(format!("no sub-phase {other:?}"))),
        }
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
