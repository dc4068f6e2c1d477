//! Floods the log: a 100 KiB message (cut to the per-message bound), a few hundred KiB of lines,
//! one message of 8 MiB, then 40 MiB of lines; then finishes normally.

use kubeforge_sdk::log::{Level, emit};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport};

struct Component;

fn lines(count: u32) {
    let line = "[spam] ".to_string() + &"x".repeat(4089);
    for i in 0..count {
        let level = match i % 3 {
            0 => Level::Info,
            1 => Level::Warn,
            _ => Level::Error,
        };
        emit(level, &line);
    }
}

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("log-spam", &[], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        emit(Level::Info, &"B".repeat(100 << 10));
        lines(100);
        let huge = "A".repeat(8 << 20);
        emit(Level::Error, &huge);
        drop(huge);
        lines(10_000);
        Ok(PhaseReport {
            outputs: vec![("log-spam".into(), "done".into())],
        })
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
