//! The hostile-component suite: each test runs one component from tests/hostile/ (built here for
//! wasm32-wasip2, once per test run) under a tight grant and tight limits, against a scratch
//! `--root` with a real configuration, and checks that the attack is contained:
//!
//! - the run fails with an error naming the phase and the limit, or the denied capability and
//!   target;
//! - no file outside the grant changed (the whole root is compared before and after, and so is a
//!   directory planted outside it);
//! - the journal has a `denied` record for each denial;
//! - the host is still fine: a stock phase run next in the same `Runner` succeeds.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use kubeforge::capabilities::kube::KubeRule;
use kubeforge::capabilities::{Access, Grant};
use kubeforge::runtime::Limits;
use kubeforge::workflow::{GrantedComponent, RunOptions, Runner};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tempfile::TempDir;

mod common;
use common::{build_components, repository};

/// The limits every hostile component runs under.
const TIGHT: Limits = Limits {
    deadline: Duration::from_secs(2),
    memory: 32 << 20,
};

/// Build tests/hostile/ (once per test process) and return the directory of its components.
fn components() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| build_components("tests/hostile/Cargo.toml"))
}

/// The hostile component `name` (a crate of tests/hostile/) under `grant`.
fn hostile(name: &str, grant: Grant) -> GrantedComponent {
    let file = components().join(format!("hostile_{}.wasm", name.replace('-', "_")));
    let wasm = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    GrantedComponent {
        name: name.to_string(),
        wasm: Cow::Owned(wasm),
        grant,
    }
}

fn fs_grant(roots: &[(&str, Access)]) -> Grant {
    Grant {
        fs: roots
            .iter()
            .map(|(root, access)| (root.to_string(), *access))
            .collect(),
        ..Grant::default()
    }
}

/// A scratch node: `--root`, a directory outside it holding a victim file, decoy files in the
/// roots no hostile component is granted, and a journal outside the root.
struct Scene {
    _dir: TempDir,
    root: PathBuf,
    outside: PathBuf,
    journal: PathBuf,
    runner: Runner,
    runtime: tokio::runtime::Runtime,
}

/// What a tree holds: for each path, its kind, mode and content digest (or link target).
type Snapshot = BTreeMap<PathBuf, String>;

impl Scene {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        let journal = dir.path().join("journal.jsonl");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(
            outside.join("victim.txt"),
            "outside the root: must not change\n",
        )
        .unwrap();
        for (path, contents) in [
            ("etc/kubernetes/admin.conf", "decoy admin.conf\n"),
            ("etc/kubernetes/planted", "decoy next to the roots\n"),
            ("etc/kubernetes/tmp/planted", "decoy in tmp\n"),
            (
                "etc/kubernetes/manifests/kube-apiserver.yaml",
                "decoy manifest\n",
            ),
            ("var/lib/kubelet/config.yaml", "decoy kubelet config\n"),
        ] {
            let file = root.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, contents).unwrap();
        }
        std::fs::create_dir_all(root.join("etc/kubernetes/pki")).unwrap();
        let config = kubeforge::config::load_init(
            Some(&repository().join("tests/hostile/config.yaml")),
            &kubeforge::config::InitFlags::default(),
        )
        .expect("tests/hostile/config.yaml loads")
        .effective;
        let runner = Runner::new(
            RunOptions {
                root: root.clone(),
                cache_dir: Some(Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-cache")),
                dry_run: false,
                journal: Some(journal.clone()),
                service_command: None,
                upload_certs: false,
                print_certificate_key: false,
                profile: Default::default(),
            },
            config,
        )
        .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            _dir: dir,
            root,
            outside,
            journal,
            runner,
            runtime,
        }
    }

    fn pki(&self) -> PathBuf {
        self.root.join("etc/kubernetes/pki")
    }

    /// Run a stock phase (or one sub-phase) with its reviewed grant; it must succeed.
    fn stock(&mut self, name: &str, sub_phase: Option<&str>) {
        let component = GrantedComponent::stock(name).unwrap();
        self.runtime
            .block_on(self.runner.run_component(
                name,
                &component,
                sub_phase,
                &[],
                Limits::default(),
            ))
            .unwrap_or_else(|e| panic!("the stock {name} phase failed: {e:#}"));
    }

    /// Run `component` in the slot `slot`; returns the run's result as the operator sees it.
    fn run(
        &mut self,
        slot: &str,
        component: &GrantedComponent,
        sub_phase: Option<&str>,
    ) -> Result<(), String> {
        self.runtime
            .block_on(
                self.runner
                    .run_component(slot, component, sub_phase, &[], TIGHT),
            )
            .map_err(|e| format!("{e:#}"))
    }

    /// Run a hostile component; it must fail, and its error must not claim an escape.
    fn attack(
        &mut self,
        slot: &str,
        component: &GrantedComponent,
        sub_phase: Option<&str>,
    ) -> String {
        let error = match self.run(slot, component, sub_phase) {
            Ok(()) => panic!("the hostile {slot} phase succeeded"),
            Err(error) => error,
        };
        eprintln!("operator sees: {error}");
        assert!(
            !error.contains("ESCAPED"),
            "the attack was not contained: {error}"
        );
        error
    }

    fn snapshot(&self) -> (Snapshot, Snapshot) {
        (snapshot(&self.root), snapshot(&self.outside))
    }

    /// Neither the root nor the directory outside it changed since `before`.
    fn assert_unchanged(&self, before: &(Snapshot, Snapshot)) {
        let after = self.snapshot();
        assert_eq!(
            diff(&before.1, &after.1),
            Vec::<String>::new(),
            "files outside the root changed"
        );
        assert_eq!(
            diff(&before.0, &after.0),
            Vec::<String>::new(),
            "files under the root changed"
        );
    }

    /// The journal's records.
    fn journal(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.journal)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("journal lines are JSON"))
            .collect()
    }

    /// The journal has a `denied` record of `phase` for `capability` whose target contains
    /// each of `targets`.
    fn assert_denied(&self, phase: &str, capability: &str, targets: &[&str]) {
        let journal = self.journal();
        let denied: Vec<&str> = journal
            .iter()
            .filter(|r| r["outcome"] == "denied" && r["phase"] == phase)
            .filter(|r| r["capability"] == capability)
            .filter_map(|r| r["target"].as_str())
            .collect();
        for target in targets {
            assert!(
                denied.iter().any(|d| d.contains(target)),
                "no denied {capability} record for {target:?} in the journal; denied: {denied:#?}"
            );
        }
        for record in journal.iter().filter(|r| r["phase"] == phase) {
            assert!(
                record["component"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("sha256:")),
                "journal record without the component digest: {record}"
            );
        }
    }

    /// The host is still fine: a stock phase run next in the same runner succeeds.
    fn assert_next_phase_runs(&mut self) {
        let manifest = self.root.join("etc/kubernetes/manifests/etcd.yaml");
        let _ = std::fs::remove_file(&manifest);
        self.stock("etcd", None);
        assert!(
            manifest.exists(),
            "the etcd phase after the attack wrote no manifest"
        );
    }
}

fn snapshot(dir: &Path) -> Snapshot {
    fn walk(base: &Path, dir: &Path, into: &mut Snapshot) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            let relative = path.strip_prefix(base).unwrap().to_path_buf();
            let what = if meta.file_type().is_symlink() {
                format!(
                    "symlink -> {}",
                    std::fs::read_link(&path).unwrap().display()
                )
            } else if meta.is_dir() {
                walk(base, &path, into);
                format!("dir {mode:o}")
            } else {
                let contents = std::fs::read(&path).unwrap();
                format!("file {mode:o} {}", hex::encode(Sha256::digest(contents)))
            };
            into.insert(relative, what);
        }
    }
    let mut snapshot = Snapshot::new();
    walk(dir, dir, &mut snapshot);
    snapshot
}

/// What differs between two snapshots, one line per path.
fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut changes = Vec::new();
    for (path, was) in before {
        match after.get(path) {
            None => changes.push(format!("removed {}", path.display())),
            Some(now) if now != was => changes.push(format!("changed {}", path.display())),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        changes.push(format!("added {}", path.display()));
    }
    changes
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let mut scene = Scene::new();
    let component = hostile("infinite-loop", Grant::default());
    let before = scene.snapshot();
    let started = Instant::now();
    let error = scene.attack("infinite-loop", &component, None);
    let took = started.elapsed();
    assert!(
        error.contains("phase infinite-loop was stopped")
            && error.contains("exceeded its deadline of 2s"),
        "{error}"
    );
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let mut scene = Scene::new();
    let component = hostile("memory-bomb", Grant::default());
    let before = scene.snapshot();
    let error = scene.attack("memory-bomb", &component, None);
    assert!(
        error.contains("phase memory-bomb was stopped")
            && error.contains("exceeded its memory limit of 32 MiB"),
        "{error}"
    );
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn deep_recursion_traps_on_stack_overflow() {
    let mut scene = Scene::new();
    let component = hostile("deep-recursion", Grant::default());
    let before = scene.snapshot();
    let error = scene.attack("deep-recursion", &component, None);
    assert!(
        error.contains("phase deep-recursion was stopped")
            && error.contains("the deep-recursion phase crashed")
            && error.contains("call stack exhausted"),
        "{error}"
    );
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn path_traversal_is_denied() {
    let mut scene = Scene::new();
    let component = hostile("path-traversal", fs_grant(&[("pki", Access::ReadWrite)]));
    let absolute = [
        Path::new("/tmp/kubeforge-hostile-absolute-escape"),
        Path::new("/tmp/kubeforge-hostile-dotdot-escape"),
    ];
    for file in absolute {
        let _ = std::fs::remove_file(file);
    }
    let before = scene.snapshot();
    let error = scene.attack("path-traversal", &component, None);
    assert!(
        error.contains(
            "phase path-traversal was denied fs access: pki:../../escape (paths must stay inside their root)"
        ),
        "{error}"
    );
    scene.assert_unchanged(&before);
    for file in absolute {
        assert!(!file.exists(), "{} was written", file.display());
    }
    scene.assert_denied(
        "path-traversal",
        "fs",
        &[
            "pki:../../escape",
            "pki:/tmp/kubeforge-hostile-absolute-escape",
            "pki:sub/../../escape",
            "pki:../../../../../../../../../../tmp/kubeforge-hostile-dotdot-escape",
            "pki:../escape-dir",
            "pki:../admin.conf",
            "pki:/etc/passwd",
            "pki:../planted",
            "pki:../../escape.key",
            "pki:/etc/kubernetes/pki/ca.key",
        ],
    );
    scene.assert_next_phase_runs();
}

#[test]
fn a_planted_symlink_does_not_lead_out_of_the_root() {
    let mut scene = Scene::new();
    std::os::unix::fs::symlink(&scene.outside, scene.pki().join("outside")).unwrap();
    std::os::unix::fs::symlink(
        scene.outside.join("victim.txt"),
        scene.pki().join("victim.crt"),
    )
    .unwrap();
    let component = hostile("symlink-escape", fs_grant(&[("pki", Access::ReadWrite)]));
    let before = scene.snapshot();
    let error = scene.attack("symlink-escape", &component, None);
    assert!(
        error.contains(
            "phase symlink-escape was denied fs access: pki:outside/planted (crosses a symbolic link)"
        ),
        "{error}"
    );
    scene.assert_unchanged(&before);
    assert!(!scene.outside.join("planted").exists());
    scene.assert_denied(
        "symlink-escape",
        "fs",
        &[
            "pki:outside/planted",
            "pki:victim.crt",
            "pki:outside/victim.txt",
            "pki:outside/sub",
            "pki:outside/stolen.key",
            "pki:outside/stolen.conf",
        ],
    );
    scene.assert_next_phase_runs();
}

#[test]
fn writes_to_ungranted_roots_are_denied() {
    let mut scene = Scene::new();
    let component = hostile(
        "ungranted-root",
        fs_grant(&[("pki", Access::ReadWrite), ("tmp", Access::Read)]),
    );
    let before = scene.snapshot();
    let error = scene.attack("ungranted-root", &component, None);
    assert!(
        error.contains(
            "phase ungranted-root was denied fs access: write manifests:kube-apiserver.yaml"
        ),
        "{error}"
    );
    scene.assert_unchanged(&before);
    scene.assert_denied(
        "ungranted-root",
        "fs",
        &[
            "write manifests:kube-apiserver.yaml",
            "write kubeconfig:admin.conf",
            "read kubeconfig:admin.conf",
            "write etcd-data:",
            "write kubelet:config.yaml",
            "write tmp:owned",
            "write tmp:planted",
            "write no-such-root:x",
        ],
    );
    scene.assert_next_phase_runs();
}

#[test]
fn signing_with_or_creating_an_ungranted_ca_is_denied() {
    let mut scene = Scene::new();
    scene.stock("certs", Some("ca"));
    scene.stock("certs", Some("etcd-ca"));
    let grant = Grant {
        pki_sign: vec!["ca".into()],
        ..Grant::default()
    };
    let component = hostile("ungranted-ca", grant);
    let before = scene.snapshot();

    let error = scene.attack("ungranted-ca", &component, Some("sign"));
    assert!(
        error.contains("phase ungranted-ca/sign was denied pki access: open CA etcd-ca"),
        "{error}"
    );
    scene.assert_denied(
        "ungranted-ca",
        "pki",
        &["open CA etcd-ca", "open CA front-proxy-ca"],
    );
    scene.assert_denied("ungranted-ca", "fs", &["read pki:etcd/ca.key"]);

    let error = scene.attack("ungranted-ca", &component, Some("create"));
    assert!(
        error.contains("phase ungranted-ca/create was denied pki access: create CA front-proxy-ca"),
        "{error}"
    );
    scene.assert_denied(
        "ungranted-ca",
        "pki",
        &[
            "create CA front-proxy-ca",
            "create CA etcd-ca",
            "create CA ca",
        ],
    );
    scene.assert_unchanged(&before);
    assert!(!scene.pki().join("front-proxy-ca.crt").exists());
    scene.assert_next_phase_runs();
}

#[test]
fn private_key_bytes_do_not_reach_a_guest_through_any_import() {
    let mut scene = Scene::new();
    scene.stock("certs", Some("ca"));
    let ca_key = std::fs::read_to_string(scene.pki().join("ca.key")).unwrap();
    let component = hostile(
        "key-exfiltration",
        fs_grant(&[
            ("pki", Access::Read),
            ("kubeconfig", Access::ReadWrite),
            ("tmp", Access::ReadWrite),
        ]),
    );
    let before = scene.snapshot();
    let error = scene.attack("key-exfiltration", &component, None);
    assert!(
        error.contains(
            "phase key-exfiltration was denied fs access: read pki:ca.key (it holds private key material: use the pki interface)"
        ),
        "{error}"
    );
    // Neither what the operator sees nor the journal holds key material.
    let journal = std::fs::read_to_string(&scene.journal).unwrap();
    for line in ca_key.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!error.contains(line), "the error holds the CA key");
        assert!(!journal.contains(line), "the journal holds the CA key");
    }
    // It wrote only where it may, and no CA file changed. (Copying the loaded CA key out with
    // `store` or `store-kubeconfig` fails today for RSA keys, for an unrelated reason: the
    // host cannot re-encode a loaded RSA key; if it ever can, the copy's read must be denied.)
    let after = scene.snapshot();
    let changes = diff(&before.0, &after.0);
    for required in [
        "added etc/kubernetes/stolen.conf",
        "added etc/kubernetes/tmp/stolen.key",
    ] {
        assert!(changes.iter().any(|c| c == required), "{changes:?}");
    }
    let mut denied = vec![
        "read pki:ca.key",
        "read pki:./ca.key",
        "read tmp:stolen.key",
        "read kubeconfig:stolen.conf",
    ];
    for (change, read) in [
        (
            "added etc/kubernetes/tmp/ca-copy.key",
            "read tmp:ca-copy.key",
        ),
        (
            "added etc/kubernetes/tmp/ca-key.conf",
            "read tmp:ca-key.conf",
        ),
    ] {
        if changes.iter().any(|c| c == change) {
            denied.push(read);
        }
    }
    assert!(
        changes.iter().all(|c| [
            "added etc/kubernetes/stolen.conf",
            "added etc/kubernetes/tmp/stolen.key",
            "added etc/kubernetes/tmp/ca-copy.key",
            "added etc/kubernetes/tmp/ca-key.conf",
        ]
        .contains(&c.as_str())),
        "{changes:?}"
    );
    assert_eq!(diff(&before.1, &after.1), Vec::<String>::new());
    scene.assert_denied("key-exfiltration", "fs", &denied);
    scene.assert_next_phase_runs();
}

#[test]
fn a_trap_mid_phase_keeps_what_was_written_before_it() {
    let mut scene = Scene::new();
    let component = hostile(
        "trap-mid-phase",
        fs_grant(&[("manifests", Access::ReadWrite)]),
    );
    for (sub, file, contents) in [
        ("panic", "before-panic.yaml", "written: before the panic\n"),
        (
            "unreachable",
            "before-unreachable.yaml",
            "written: before the trap\n",
        ),
    ] {
        let before = scene.snapshot();
        let error = scene.attack("trap-mid-phase", &component, Some(sub));
        assert!(
            error.contains(&format!("phase trap-mid-phase/{sub} was stopped"))
                && error.contains("the trap-mid-phase phase crashed")
                && error.contains("unreachable"),
            "{error}"
        );
        // The workflow commits staged writes after every run, trapped or not: what the phase
        // wrote before the trap is on disk, whole (written atomically), as kubeadm keeps the
        // files of a phase that failed; a re-run resumes from there.
        let after = scene.snapshot();
        assert_eq!(
            diff(&before.0, &after.0),
            [format!("added etc/kubernetes/manifests/{file}")]
        );
        let path = scene.root.join("etc/kubernetes/manifests").join(file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            scene
                .journal()
                .iter()
                .any(|r| r["phase"] == "trap-mid-phase"
                    && r["outcome"] == "ok"
                    && r["target"].as_str().is_some_and(|t| t.ends_with(file))),
            "the write before the trap is not journaled"
        );
        assert_eq!(diff(&before.1, &after.1), Vec::<String>::new());
    }
    scene.assert_next_phase_runs();
}

#[test]
fn a_describe_asking_for_more_than_the_grant_is_refused_before_it_runs() {
    let mut scene = Scene::new();
    let component = hostile("greedy-describe", fs_grant(&[("pki", Access::Read)]));
    let before = scene.snapshot();
    let error = scene.attack("greedy", &component, None);
    assert!(
        error.contains("refusing to run phase greedy: component greedy-describe (sha256:")
            && error.contains("requests more than its grant"),
        "{error}"
    );
    for missing in [
        "fs: pki read-write",
        "fs: kubeconfig read-write",
        "fs: tmp read",
        "pki: sign with ca",
        "pki: sign with etcd-ca",
        "pki: create ca",
        "node: path-exists /etc/shadow",
        "kube:",
    ] {
        assert!(
            error.contains(&format!("\n  {missing}")),
            "{missing:?} is not listed: {error}"
        );
    }
    // Neither run() nor the write describe() tried happened; describe() runs with no grant.
    scene.assert_unchanged(&before);
    // describe() runs before the slot is known: its records carry the component's name.
    scene.assert_denied("greedy-describe", "fs", &["write pki:written-by-describe"]);
    scene.assert_next_phase_runs();
}

#[test]
fn a_component_importing_kube_without_a_grant_is_refused_before_it_runs() {
    let mut scene = Scene::new();
    // The component requests nothing in describe() and imports kube anyway: its imports are
    // checked against the grant at load, so it never runs (the decoy admin.conf under the root
    // would make any connection attempt fail with another error).
    let component = hostile("kube-import", Grant::default());
    let before = scene.snapshot();
    let error = scene.attack("kube-import", &component, None);
    assert!(
        error.contains("refusing to run phase kube-import: component kube-import (sha256:")
            && error
                .contains("imports kubeforge:phase/kube@0.1.0, which its grant gives nothing of"),
        "{error}"
    );
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn an_apply_outside_the_granted_namespaces_is_denied_before_the_api() {
    let mut scene = Scene::new();
    let component = hostile(
        "ungranted-namespace",
        Grant {
            kube: vec![KubeRule::new(&["apply"], &["configmaps"], &["kube-system"])],
            ..Grant::default()
        },
    );
    let before = scene.snapshot();
    let error = scene.attack("ungranted-namespace", &component, None);
    assert!(
        error.contains(
            "phase ungranted-namespace was denied kube access: apply ConfigMap default/hostile"
        ),
        "{error}"
    );
    scene.assert_denied(
        "ungranted-namespace",
        "kube",
        &[
            "apply ConfigMap default/hostile",
            "apply Secret kube-public/hostile",
        ],
    );
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn a_path_under_one_root_does_not_reach_a_root_nested_in_it() {
    let mut scene = Scene::new();
    scene.stock("certs", Some("ca"));
    let component = hostile(
        "nested-root",
        fs_grant(&[("kubeconfig", Access::ReadWrite)]),
    );
    let before = scene.snapshot();
    let error = scene.attack("nested-root", &component, None);
    assert!(
        error.contains(
            "phase nested-root was denied fs access: kubeconfig:manifests/hostile.yaml (inside the manifests root)"
        ),
        "{error}"
    );
    scene.assert_denied(
        "nested-root",
        "fs",
        &[
            "kubeconfig:manifests/hostile.yaml",
            "kubeconfig:manifests/kube-apiserver.yaml",
            "kubeconfig:./manifests/hostile2.yaml",
            "kubeconfig:pki/apiserver.key",
            "kubeconfig:tmp/kubeforge-journal.jsonl",
            "kubeconfig:manifests (inside the manifests root)",
            "kubeconfig:pki/ca.crt",
        ],
    );
    let after = scene.snapshot();
    assert_eq!(
        diff(&before.0, &after.0),
        ["added etc/kubernetes/hostile.conf"]
    );
    assert_eq!(diff(&before.1, &after.1), Vec::<String>::new());
    scene.assert_next_phase_runs();
}

#[test]
fn endless_key_generation_is_held_to_the_deadline_without_a_thread_per_key() {
    let mut scene = Scene::new();
    let component = hostile("key-bomb", Grant::default());
    let before = scene.snapshot();
    let started = Instant::now();
    let error = scene.attack("key-bomb", &component, None);
    let took = started.elapsed();
    assert!(
        error.contains("phase key-bomb was stopped")
            && error.contains("exceeded its deadline of 2s"),
        "{error}"
    );
    // Past the deadline by at most the key being generated when it passed.
    assert!(took < Duration::from_secs(30), "stopping took {took:?}");
    // Each `generate` used to start a thread: tens of thousands within the deadline.
    let threads: usize = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap();
    assert!(threads < 300, "the test process has {threads} threads");
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn a_describe_that_never_returns_is_held_to_the_run_deadline() {
    let mut scene = Scene::new();
    let component = hostile("slow-describe", Grant::default());
    let before = scene.snapshot();
    let started = Instant::now();
    let error = scene.attack("slow-describe", &component, None);
    let took = started.elapsed();
    assert!(
        error.contains("the slow-describe phase exceeded its deadline of 2s")
            || error.contains("the slow-describe phase did not describe itself within 2s"),
        "{error}"
    );
    assert!(took < Duration::from_secs(10), "stopping took {took:?}");
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn a_ca_is_never_overwritten_or_removed_through_a_writable_root() {
    let mut scene = Scene::new();
    scene.stock("certs", Some("ca"));
    scene.stock("certs", Some("etcd-ca"));
    let component = hostile("ca-clobber", fs_grant(&[("pki", Access::ReadWrite)]));
    let before = scene.snapshot();
    let error = scene.attack("ca-clobber", &component, None);
    assert!(
        error.starts_with("phase ca-clobber: ")
            && error.contains("pki/ca.crt is a CA certificate; kubeforge never overwrites a CA"),
        "{error}"
    );
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

/// Run in a child process by [`giant_log_spam_is_cut_and_the_run_finishes`], whose output it
/// measures.
#[test]
#[ignore = "run by giant_log_spam_is_cut_and_the_run_finishes"]
fn log_spam_child() {
    let mut scene = Scene::new();
    let component = hostile("log-spam", Grant::default());
    let before = scene.snapshot();
    let started = Instant::now();
    scene
        .run("log-spam", &component, None)
        .expect("the log-spam phase finishes");
    eprintln!("log-spam finished in {:?}", started.elapsed());
    scene.assert_unchanged(&before);
    scene.assert_next_phase_runs();
}

#[test]
fn giant_log_spam_is_cut_and_the_run_finishes() {
    components();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "log_spam_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the child failed:\n{}\n{}",
        &stdout[stdout.len().saturating_sub(2000)..],
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(stdout.contains("1 passed"), "{stdout}");
    // The component logged 8 MiB in one message and 40 MiB in lines; the host lets 1 MiB through.
    let total = output.stdout.len() + output.stderr.len();
    assert!(
        total < (1 << 20) + (256 << 10),
        "the log spam reached the output: {total} bytes"
    );
    assert!(
        stderr.contains("[log-spam] log limit of 1048576 bytes reached; further lines are dropped"),
        "{}",
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    assert!(
        stderr.contains(" …(truncated)") || stdout.contains(" …(truncated)"),
        "the 8 MiB message was not cut"
    );
}
