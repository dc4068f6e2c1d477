//! `kubeforge:phase/log`: operator-facing lines from a phase, bounded in size.

use crate::capabilities::PhaseState;
use crate::runtime::bindings::kubeforge::phase::log::{Host, Level};

/// Bytes one message may have; longer ones are cut.
const MAX_MESSAGE: usize = 16 * 1024;
/// Bytes one phase run may log in all; the rest is dropped with one notice.
const MAX_TOTAL: usize = 1024 * 1024;

#[derive(Default)]
pub struct LogBudget {
    used: usize,
    exhausted: bool,
}

impl Host for PhaseState {
    fn emit(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        if self.log.exhausted {
            return Ok(());
        }
        self.log.used += message.len();
        if self.log.used > MAX_TOTAL {
            self.log.exhausted = true;
            eprintln!(
                "[{}] log limit of {MAX_TOTAL} bytes reached; further lines are dropped",
                self.origin.phase
            );
            return Ok(());
        }
        let mut message = message;
        if message.len() > MAX_MESSAGE {
            let mut cut = MAX_MESSAGE;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push_str(" …(truncated)");
        }
        match level {
            Level::Debug => tracing::debug!(phase = %self.origin.phase, "{message}"),
            Level::Info => println!("{message}"),
            Level::Warn => eprintln!("W [{}] {message}", self.origin.phase),
            Level::Error => eprintln!("E [{}] {message}", self.origin.phase),
        }
        Ok(())
    }
}
