//! `kubeforge config migrate` and `kubeforge config validate` side by side with the real
//! `kubeadm` of v1.37.2 (the default release) and v1.36.3, on the same files: migrate writes the
//! same bytes (the random bootstrap token aside), validate accepts and refuses the same files,
//! with kubeadm's message where kubeadm has one. The golden files of
//! host/src/config/testdata/migrate/ pin v1.35.4 (and these two) in the unit tests.
//!
//! The kubeadm binaries come from the test env (tests/testenv/build.sh); without them the tests
//! fail, saying how to build them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kubeforge_testenv::{testenv_bin_dir, testenv_bin_dir_for};

/// The real kubeadm of `version`.
fn kubeadm(version: &str) -> PathBuf {
    let bin = if version == kubeforge_api::release::DEFAULT_KUBERNETES_VERSION {
        testenv_bin_dir()
    } else {
        testenv_bin_dir_for(version)
    };
    let kubeadm = bin
        .unwrap_or_else(|err| panic!("the test env's kubeadm {version}: {err:#}"))
        .join("kubeadm");
    let reported = run(Command::new(&kubeadm).args(["version", "-o", "short"]));
    assert_eq!(
        String::from_utf8_lossy(&reported.stdout).trim(),
        version,
        "{}",
        kubeadm.display()
    );
    kubeadm
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|err| panic!("running {command:?}: {err}"))
}

fn kubeforge(args: &[&str]) -> Output {
    common::kubeforge()
        .args(args)
        .output()
        .expect("running kubeforge")
}

/// `text` written as `name` in `dir`, with `version` as its kubernetesVersion.
fn write_input(dir: &Path, name: &str, text: &str, version: &str) -> PathBuf {
    let text: String = text
        .lines()
        .map(|line| match line.strip_prefix("kubernetesVersion: ") {
            Some(_) => format!("kubernetesVersion: {version}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The random bootstrap token kubeadm and kubeforge generate when the file has none, as a
/// placeholder; everything else must be equal.
fn without_random_token(yaml: &str) -> String {
    yaml.lines()
        .map(|line| match line.strip_prefix("  token: ") {
            Some(token) if token.len() == 23 && token.as_bytes()[6] == b'.' => {
                "  token: <random>\n".to_owned()
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

/// Read by both tools from this machine: node name, advertise address, bootstrap token.
const FROM_THE_MACHINE: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
";

/// Which migrate inputs each kubeadm writes as it is (where kubeforge differs on purpose, the
/// unit tests pin the difference against that kubeadm's golden file).
fn migrate_inputs(version: &str) -> Vec<(&'static str, &'static str)> {
    let mut inputs = vec![("machine", FROM_THE_MACHINE)];
    if version == "v1.37.2" {
        inputs.extend([
            (
                "v1beta4",
                include_str!("../src/config/testdata/migrate/v1beta4/input.yaml"),
            ),
            (
                "v1",
                include_str!("../src/config/testdata/migrate/v1/input.yaml"),
            ),
            (
                "upgrade",
                include_str!("../src/config/testdata/migrate/upgrade/input.yaml"),
            ),
        ]);
    } else {
        inputs.push((
            "v1beta3",
            include_str!("../src/config/testdata/migrate/v1beta3/input.yaml"),
        ));
    }
    inputs
}

// One test per release, named by it: `make test` runs the older release's tests once its test
// env is built (tests/run-all.sh).
#[test]
fn migrate_writes_what_kubeadm_v1_37_writes() {
    migrate_writes_what_kubeadm_writes("v1.37.2");
}

#[test]
fn migrate_writes_what_kubeadm_v1_36_writes() {
    migrate_writes_what_kubeadm_writes("v1.36.3");
}

fn migrate_writes_what_kubeadm_writes(version: &str) {
    let kubeadm = kubeadm(version);
    for (name, text) in migrate_inputs(version) {
        let dir = tempfile::tempdir().unwrap();
        let old = write_input(dir.path(), "old.yaml", text, version);
        let experimental: &[&str] = if name == "v1" {
            &["--allow-experimental-api"]
        } else {
            &[]
        };
        let theirs = dir.path().join("kubeadm.yaml");
        let output = run(Command::new(&kubeadm)
            .args(["config", "migrate", "--old-config"])
            .arg(&old)
            .arg("--new-config")
            .arg(&theirs)
            .args(experimental));
        assert!(
            output.status.success(),
            "kubeadm {version} {name}: {output:?}"
        );
        let ours = dir.path().join("kubeforge.yaml");
        let output = kubeforge(
            &[
                &[
                    "config",
                    "migrate",
                    "--old-config",
                    old.to_str().unwrap(),
                    "--new-config",
                    ours.to_str().unwrap(),
                    "--kubernetes-version",
                    version,
                ][..],
                experimental,
            ]
            .concat(),
        );
        assert!(
            output.status.success(),
            "kubeforge {version} {name}: {output:?}"
        );
        assert!(output.stdout.is_empty(), "{output:?}");
        let mut expected = without_random_token(&std::fs::read_to_string(&theirs).unwrap());
        if version == "v1.36.3" {
            // kubeadm v1.36 writes a zero control-plane wait for a v1beta4
            // ClusterConfiguration; kubeforge keeps the InitConfiguration's (here the
            // default). The unit tests pin this against every release's golden file.
            expected = expected.replacen(
                "  controlPlaneComponentHealthCheck: 0s\n",
                "  controlPlaneComponentHealthCheck: 4m0s\n",
                1,
            );
        }
        assert_eq!(
            without_random_token(&std::fs::read_to_string(&ours).unwrap()),
            expected,
            "{version} {name}"
        );
    }
}

/// A file for `config validate`, and what both tools make of it.
struct ValidateCase {
    name: &'static str,
    text: &'static str,
    flags: &'static [&'static str],
    /// `None`: both print `ok`. `Some(true)`: both refuse, and kubeforge's error contains
    /// kubeadm's message. `Some(false)`: both refuse, in their own words (kubeadm's is a Go
    /// decoding error; kubeforge's names the line and the API version that has the field).
    refused_with_kubeadms_message: Option<bool>,
}

/// The files both releases judge alike.
const VALIDATE_CASES: [ValidateCase; 5] = [
    ValidateCase {
        name: "every kind",
        text: include_str!("../src/config/testdata/migrate/v1beta4/input.yaml"),
        flags: &[],
        refused_with_kubeadms_message: None,
    },
    ValidateCase {
        name: "a v1beta3 field in v1beta4",
        text: "apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
apiServer:
  timeoutForControlPlane: 4m0s
",
        flags: &[],
        refused_with_kubeadms_message: Some(false),
    },
    ValidateCase {
        name: "extra arguments as a map in v1beta4",
        text: "apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
controllerManager:
  extraArgs:
    v: \"4\"
",
        flags: &[],
        refused_with_kubeadms_message: Some(false),
    },
    ValidateCase {
        name: "a join without a port",
        text: "apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
nodeRegistration:
  name: worker-b
discovery:
  bootstrapToken:
    token: abcdef.0123456789abcdef
    apiServerEndpoint: 10.0.0.1
    unsafeSkipCAVerification: true
",
        flags: &[],
        refused_with_kubeadms_message: Some(true),
    },
    ValidateCase {
        name: "an unknown unmount flag",
        text: "apiVersion: kubeadm.k8s.io/v1beta4
kind: ResetConfiguration
unmountFlags: [MNT_LAZY]
",
        flags: &[],
        refused_with_kubeadms_message: Some(true),
    },
];

const V1BETA3: &str = include_str!("../src/config/testdata/migrate/v1beta3/input.yaml");

const V1_MERGE_METHODS: &str = "\
apiVersion: kubeadm.k8s.io/v1
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
apiServer:
  extraArgs:
  - name: authorization-mode
    value: \",Webhook\"
    mergeMethod: append
";

/// A gate v1.35 and v1.36 know and v1.37 removed.
const PUBLIC_KEYS_ECDSA: &str = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
featureGates:
  PublicKeysECDSA: true
";

/// What v1.36 reads and v1.37 does not.
const V1_36_CASES: [ValidateCase; 2] = [
    ValidateCase {
        name: "v1beta3",
        text: V1BETA3,
        flags: &["--allow-deprecated-api"],
        refused_with_kubeadms_message: None,
    },
    ValidateCase {
        name: "the PublicKeysECDSA gate",
        text: PUBLIC_KEYS_ECDSA,
        flags: &[],
        refused_with_kubeadms_message: None,
    },
];

/// What v1.37 reads, or refuses, differently.
const V1_37_CASES: [ValidateCase; 5] = [
    ValidateCase {
        name: "v1beta3",
        text: V1BETA3,
        flags: &[],
        refused_with_kubeadms_message: Some(true),
    },
    ValidateCase {
        name: "the PublicKeysECDSA gate",
        text: PUBLIC_KEYS_ECDSA,
        flags: &[],
        refused_with_kubeadms_message: Some(true),
    },
    ValidateCase {
        name: "v1 without --allow-experimental-api",
        text: V1_MERGE_METHODS,
        flags: &[],
        refused_with_kubeadms_message: Some(true),
    },
    ValidateCase {
        name: "v1 with --allow-experimental-api",
        text: V1_MERGE_METHODS,
        flags: &["--allow-experimental-api"],
        refused_with_kubeadms_message: None,
    },
    ValidateCase {
        name: "an invalid merge method",
        text: "apiVersion: kubeadm.k8s.io/v1
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
scheduler:
  extraArgs:
  - name: v
    value: \"4\"
    mergeMethod: Append
",
        flags: &["--allow-experimental-api"],
        refused_with_kubeadms_message: Some(true),
    },
];

#[test]
fn validate_agrees_with_kubeadm_v1_37() {
    validate_agrees_with_kubeadm("v1.37.2");
}

#[test]
fn validate_agrees_with_kubeadm_v1_36() {
    validate_agrees_with_kubeadm("v1.36.3");
}

fn validate_agrees_with_kubeadm(version: &str) {
    let kubeadm = kubeadm(version);
    let own_cases: &[ValidateCase] = if version == "v1.37.2" {
        &V1_37_CASES
    } else {
        &V1_36_CASES
    };
    for case in VALIDATE_CASES.iter().chain(own_cases) {
        let context = format!("{version}: {}", case.name);
        let dir = tempfile::tempdir().unwrap();
        let text = case.text.replace("KUBERNETES_VERSION", version);
        let file = write_input(dir.path(), "kubeadm.yaml", &text, version);
        let theirs = run(Command::new(&kubeadm)
            .args(["config", "validate", "--config"])
            .arg(&file)
            .args(case.flags));
        let ours = kubeforge(
            &[
                &["config", "validate", "--config", file.to_str().unwrap()][..],
                case.flags,
            ]
            .concat(),
        );
        let their_error = String::from_utf8_lossy(&theirs.stderr);
        let our_error = String::from_utf8_lossy(&ours.stderr);
        match case.refused_with_kubeadms_message {
            None => {
                assert!(theirs.status.success(), "{context}: kubeadm: {their_error}");
                assert!(ours.status.success(), "{context}: kubeforge: {our_error}");
                assert_eq!(ours.stdout, theirs.stdout, "{context}");
                assert_eq!(ours.stdout, b"ok\n", "{context}");
            }
            Some(same_message) => {
                assert!(!theirs.status.success(), "{context}: kubeadm accepted it");
                assert!(!ours.status.success(), "{context}: kubeforge accepted it");
                let message = their_error
                    .lines()
                    .find_map(|line| line.strip_prefix("error: "))
                    .unwrap_or_else(|| panic!("{context}: kubeadm said {their_error}"));
                if same_message {
                    assert!(
                        our_error.contains(message),
                        "{context}: kubeadm said {message:?}, kubeforge {our_error:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn migrate_needs_an_old_config_and_keeps_it() {
    let output = kubeforge(&["config", "migrate"]);
    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "error: the --old-config flag is mandatory\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let old = write_input(
        dir.path(),
        "old.yaml",
        include_str!("../src/config/testdata/migrate/v1beta4/input.yaml"),
        "v1.37.2",
    );
    let before = std::fs::read(&old).unwrap();
    let output = kubeforge(&[
        "config",
        "migrate",
        "--old-config",
        old.to_str().unwrap(),
        "--new-config",
        old.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("is the file --old-config reads"),
        "{message}"
    );
    assert_eq!(std::fs::read(&old).unwrap(), before);
    let unwritable = dir.path().join("missing-dir/new.yaml");
    std::fs::write(dir.path().join("missing-dir"), "a file, not a directory").unwrap();
    let output = kubeforge(&[
        "config",
        "migrate",
        "--old-config",
        old.to_str().unwrap(),
        "--new-config",
        unwritable.to_str().unwrap(),
    ]);
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains(&format!(
            "\nerror: failed to write the new configuration to the file {:?}: ",
            unwritable.display().to_string()
        )),
        "{message}"
    );
}
