//! Waiting for what a cluster settles into.

use std::time::{Duration, Instant};

use anyhow::Result;

/// Asks `probe` every 200 ms until it answers `Some`; an error counts as "not yet" (the API
/// server restarting, a Pod not scheduled) and the last one is reported if `timeout` passes.
pub fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(Some(found)) => return Ok(found),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if Instant::now() > deadline {
            return Err(match last {
                Some(e) => e.context(format!("{what}: not within {timeout:?}")),
                None => anyhow::anyhow!("{what}: not within {timeout:?}"),
            });
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
