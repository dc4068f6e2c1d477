//! A hostile machine, not a hostile component: while `init phase certs all` writes the PKI,
//! another process swaps a directory inside the pki root — and the pki root itself — for a
//! symbolic link to a directory outside, over and over (an atomic `RENAME_EXCHANGE`, so the
//! real directory is never missing). Nothing may ever land outside, the run either completes or
//! fails naming the path, and a rerun with the machine back in order completes.
//!
//! `KUBEFORGE_FS_RACE_ROUNDS` rounds (CI: the default below; `make soak`: many more), each
//! with swap timings drawn from `KUBEFORGE_FS_RACE_SEED`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use rustix::fs::{CWD, RenameFlags, renameat_with};

const DEFAULT_ROUNDS: usize = 12;
const DEFAULT_SEED: u64 = 0x6b75_6265_666f_7267;

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// Swaps `target` with a link to `outside` until told to stop; counts the swaps.
struct Swapper {
    stop: Arc<AtomicBool>,
    swaps: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
    target: PathBuf,
    link: PathBuf,
}

impl Swapper {
    fn start(target: &Path, outside: &Path, seed: u64) -> Self {
        let link = target.with_file_name(format!(
            "{}.swap-link",
            target.file_name().unwrap().to_string_lossy()
        ));
        std::os::unix::fs::symlink(outside, &link).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swaps = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, swaps) = (stop.clone(), swaps.clone());
            let (target, link) = (target.to_path_buf(), link.clone());
            std::thread::spawn(move || {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                while !stop.load(Ordering::Relaxed) {
                    // The link takes the directory's place; while the directory does not exist
                    // yet, the link takes its name.
                    let swapped = renameat_with(CWD, &target, CWD, &link, RenameFlags::EXCHANGE)
                        .is_ok()
                        || renameat_with(CWD, &link, CWD, &target, RenameFlags::NOREPLACE).is_ok();
                    if swapped {
                        swaps.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_micros(rng.random_range(0..400)));
                        put_back(&target, &link);
                    }
                    std::thread::sleep(Duration::from_micros(rng.random_range(0..400)));
                }
            })
        };
        Self {
            stop,
            swaps,
            thread: Some(thread),
            target: target.to_path_buf(),
            link,
        }
    }

    /// Stop swapping and put the machine back in order; the number of swaps made.
    fn stop(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        put_back(&self.target, &self.link);
        std::fs::remove_file(&self.link).unwrap();
        self.swaps.load(Ordering::Relaxed)
    }
}

/// Undo a swap: the link back to its own name, the directory (if any) back to `target`.
fn put_back(target: &Path, link: &Path) {
    if !target.is_symlink() {
        return;
    }
    if link.is_symlink() || !link.exists() {
        // The link took the target's free name: give it back.
        std::fs::rename(target, link).unwrap();
    } else {
        renameat_with(CWD, target, CWD, link, RenameFlags::EXCHANGE).unwrap();
    }
}

fn assert_nothing_outside(outside: &Path, what: &str) {
    let written = walk(outside);
    assert!(
        written.is_empty(),
        "{what}: files were written outside the root: {written:?}"
    );
}

/// Every round: a run under swapping, then a rerun that must complete to a consistent PKI.
fn race(swapped: &str, description: &str) {
    let rounds = env_number("KUBEFORGE_FS_RACE_ROUNDS", DEFAULT_ROUNDS as u64) as usize;
    let seed = env_number("KUBEFORGE_FS_RACE_SEED", DEFAULT_SEED);
    let config = config("ecdsa.yaml");
    let (mut completed, mut refused, mut swaps) = (0, 0, 0);
    for round in 0..rounds {
        let scene = tempfile::tempdir().unwrap();
        let root = scene.path().join("node");
        let outside = scene.path().join("outside");
        std::fs::create_dir_all(root.join("etc/kubernetes/pki")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let what = format!("{description}, round {round} (seed {seed})");

        let swapper = Swapper::start(
            &root.join("etc/kubernetes").join(swapped),
            &outside,
            seed.wrapping_add(round as u64),
        );
        let output = phase(&root, "certs", "all", &config, &[]);
        swaps += swapper.stop();
        assert_nothing_outside(&outside, &what);
        if output.success {
            completed += 1;
        } else {
            refused += 1;
            let text = output.all();
            assert!(
                text.contains("symbolic link") && text.contains("pki"),
                "{what}: a failed run names the link it refused:\n{text}"
            );
        }

        phase(&root, "certs", "all", &config, &[]).assert_success(&format!("{what}: the rerun"));
        assert_nothing_outside(&outside, &what);
        assert_consistent_pki(&root.join("etc/kubernetes/pki"), Algorithm::EcdsaP256);
    }
    eprintln!(
        "{description}: {rounds} rounds, {swaps} swaps; {completed} runs completed, {refused} refused a link"
    );
    assert!(swaps > 0, "{description}: the swapper never swapped");
}

#[test]
fn a_directory_inside_the_pki_root_swapped_for_a_link_never_leads_writes_outside() {
    race("pki/etcd", "pki/etcd swapped");
}

#[test]
fn the_pki_root_swapped_for_a_link_never_leads_writes_outside() {
    race("pki", "pki swapped");
}

/// A root of its own that is a link when the run starts is followed once (DESIGN.md,
/// "Filesystem roots"); a nested root that is a link is a link inside its outer root, refused.
#[test]
fn a_root_that_is_a_link_at_start_is_followed_once_and_a_nested_one_refused() {
    let config = config("ecdsa.yaml");
    let scene = tempfile::tempdir().unwrap();
    let root = scene.path().join("node");
    let disk = scene.path().join("other-disk/etcd");
    std::fs::create_dir_all(root.join("var/lib")).unwrap();
    std::fs::create_dir_all(&disk).unwrap();
    std::os::unix::fs::symlink(&disk, root.join("var/lib/etcd")).unwrap();
    phase(&root, "etcd", "local", &config, &[])
        .assert_success("etcd local with /var/lib/etcd a link to another disk");
    assert!(root.join("etc/kubernetes/manifests/etcd.yaml").is_file());
    assert!(
        root.join("var/lib/etcd").is_symlink() && disk.is_dir(),
        "the linked etcd-data root is used where it points, not replaced"
    );

    let elsewhere = scene.path().join("elsewhere/pki");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(root.join("etc/kubernetes")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join("etc/kubernetes/pki")).unwrap();
    let output = phase(&root, "certs", "all", &config, &[]);
    output.assert_failure("certs all with /etc/kubernetes/pki a link");
    let text = output.all();
    assert!(
        text.contains("etc/kubernetes/pki is a symbolic link inside the kubeconfig root"),
        "the error names the link and the root it is in:\n{text}"
    );
    assert_nothing_outside(&elsewhere, "a linked pki root");
}
