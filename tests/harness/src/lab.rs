//! The lab: the process that holds a cluster's network namespace (its bridge, and the host's
//! veth into it) for as long as the cluster lives.
//!
//! It exits on SIGTERM (`cluster delete`) or when the cluster's owner exits (a test that was
//! killed), taking the namespace, the bridge and the host's veth with it; the last lab to go
//! puts the machine's kernel settings back ([`crate::sysctls`]).

use std::time::Duration;

use anyhow::Result;

use crate::state::{ProcessId, StateLock};
use crate::supervisor::{handle_terminate, owner_pidfd, terminate_requested, wait_pidfd};

/// Runs the lab of `cluster` until it is told to stop or `owner` exits.
pub fn run(cluster: &str, owner: Option<ProcessId>) -> Result<()> {
    handle_terminate();
    let Some(owner) = owner else {
        // Deleted by `cluster delete`, which cleans up after it.
        while !terminate_requested() {
            std::thread::sleep(Duration::from_millis(100));
        }
        return Ok(());
    };
    if let Ok(fd) = owner_pidfd(owner) {
        let (exited, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            wait_pidfd(fd);
            let _ = exited.send(());
        });
        loop {
            if terminate_requested() {
                return Ok(());
            }
            if wait.recv_timeout(Duration::from_millis(100)).is_ok() {
                break;
            }
        }
    }
    eprintln!("lab: the cluster's owner {} exited", owner.pid);
    // Whoever deletes the cluster meanwhile (holding the state lock) puts the settings back
    // and stops this lab; otherwise this lab does it.
    loop {
        if terminate_requested() {
            return Ok(());
        }
        if let Some(_lock) = StateLock::try_acquire()? {
            return crate::sysctls::release_unless_in_use(cluster);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
