//! `kubeforge init phase certs all` killed with SIGKILL part-way, then run again: the run
//! completes and leaves a consistent PKI, with no temporary files behind.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

fn assert_consistent(root: &std::path::Path, what: &str) {
    assert_consistent_pki(&root.join("etc/kubernetes/pki"), Algorithm::Rsa2048);
    let leftovers: Vec<_> = walk(root)
        .into_iter()
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with('.') && name.ends_with(".tmp")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "{what}: temporary files left behind: {leftovers:?}"
    );
}

/// Start `certs all` and SIGKILL it after `delay` (or let it finish if it is quicker).
fn run_and_kill(root: &std::path::Path, delay: Duration) -> bool {
    let config = config("defaults.yaml");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("kubeforge"))
        .env("KUBEFORGE_CACHE_DIR", cache_dir())
        .arg("--root")
        .arg(root)
        .args(["init", "phase", "certs", "all", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting kubeforge");
    std::thread::sleep(delay);
    let killed = matches!(child.try_wait(), Ok(None));
    // Child::kill sends SIGKILL on Unix.
    let _ = child.kill();
    let _ = child.wait();
    killed
}

#[test]
fn certs_killed_at_any_point_resume_to_a_consistent_pki() {
    let config = config("defaults.yaml");
    // Warm the compiled-component cache and learn how long one run takes here, so the kills
    // land across the whole run rather than before it starts.
    let warm = tempfile::tempdir().unwrap();
    let start = Instant::now();
    phase(warm.path(), "certs", "all", &config, &[]).assert_success("certs all");
    let full = start.elapsed();
    assert_consistent(warm.path(), "an uninterrupted run");

    // Fixed short delays, then fractions of a full run, densely towards its end where the
    // files are written.
    let mut delays: Vec<Duration> = [5u64, 20, 50, 100, 200]
        .iter()
        .map(|ms| Duration::from_millis(*ms))
        .collect();
    delays.extend((1..=9).map(|tenth| full * tenth / 10));
    delays.extend(
        [92u32, 94, 96, 98, 100, 103]
            .iter()
            .map(|pct| full * *pct / 100),
    );
    let mut killed_runs = 0;
    let mut partial = 0;
    for (round, delay) in delays.iter().enumerate() {
        let root = tempfile::tempdir().unwrap();
        // Every third round kills twice at the same point (the second run starts from the
        // first one's remains) before a run is let complete.
        let kills = if round % 3 == 0 { 2 } else { 1 };
        for _ in 0..kills {
            if run_and_kill(root.path(), *delay) {
                killed_runs += 1;
            }
        }
        let pki_files = walk(&root.path().join("etc/kubernetes/pki"))
            .into_iter()
            .filter(|p| p.is_file())
            .count();
        if pki_files > 0 && pki_files < 22 {
            partial += 1;
        }
        let output = phase(root.path(), "certs", "all", &config, &[]);
        output.assert_success(&format!(
            "round {round}: certs all after a SIGKILL at {delay:?}"
        ));
        assert_consistent(
            root.path(),
            &format!("round {round}: after a SIGKILL at {delay:?}"),
        );
        // And once more: the completed PKI is reused as it is.
        let before = snapshot(root.path());
        phase(root.path(), "certs", "all", &config, &[]).assert_success("certs all, again");
        assert_eq!(
            snapshot(root.path()),
            before,
            "round {round}: a re-run after resuming changes nothing"
        );
    }
    eprintln!(
        "{killed_runs} runs killed over {} rounds; {partial} left a partial PKI behind",
        delays.len()
    );
    assert!(
        killed_runs > 0,
        "no run was interrupted; the delays are all longer than a run"
    );
}

/// What a killed run left in the pki dir: (finished files, temporary files).
fn remains(root: &std::path::Path) -> (usize, usize) {
    let files: Vec<_> = walk(&root.join("etc/kubernetes/pki"))
        .into_iter()
        .filter(|p| p.is_file())
        .collect();
    let temporary = files
        .iter()
        .filter(|p| p.file_name().unwrap().to_string_lossy().ends_with(".tmp"))
        .count();
    (files.len() - temporary, temporary)
}

#[test]
fn certs_killed_while_writing_files_resume_to_a_consistent_pki() {
    let config = config("defaults.yaml");
    let warm = tempfile::tempdir().unwrap();
    let start = Instant::now();
    phase(warm.path(), "certs", "all", &config, &[]).assert_success("certs all");
    let full = start.elapsed();

    // Bisect the kill time towards the moment the files are written: a kill that left nothing
    // was too early, one that left the whole PKI too late; anything else interrupted the writes.
    let (mut early, mut late) = (Duration::ZERO, full + full / 5);
    let mut interrupted_writes = 0;
    for round in 0..12 {
        let delay = (early + late) / 2;
        let root = tempfile::tempdir().unwrap();
        run_and_kill(root.path(), delay);
        match remains(root.path()) {
            (0, 0) => early = delay,
            (22, 0) => late = delay,
            _ => interrupted_writes += 1,
        }
        let output = phase(root.path(), "certs", "all", &config, &[]);
        output.assert_success(&format!(
            "round {round}: certs all after a SIGKILL at {delay:?}"
        ));
        assert_consistent(
            root.path(),
            &format!("round {round}: after a SIGKILL at {delay:?}"),
        );
    }
    eprintln!("{interrupted_writes} of 12 kills interrupted the writes");
}
