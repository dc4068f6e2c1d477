use super::*;
use crate::config::tests::{machine, write_config};

fn migrate(text: &str, options: &MigrateOptions) -> Result<Migrated, ConfigError> {
    let (_dir, path) = write_config(text);
    migrate_config_on(&path, options, &machine())
}

fn validate(text: &str, options: &ValidateOptions) -> Result<Vec<String>, ConfigError> {
    let (_dir, path) = write_config(text);
    validate_config_on(&path, options, &machine())
}

fn release(minor: u64) -> Release {
    Release::of_minor(minor).unwrap()
}

/// A migrate case of testdata/migrate/ and what the kubeadm of a release makes of it.
struct Case {
    name: &'static str,
    input: &'static str,
    /// By minor: kubeadm's output (tests/golden/regenerate.sh writes them), or what kubeforge
    /// writes or says instead, and why.
    outcomes: [(u64, Outcome); 3],
}

enum Outcome {
    /// Byte for byte what kubeadm writes.
    Kubeadm(&'static str),
    /// kubeadm writes a zero control-plane wait where kubeforge keeps the InitConfiguration's
    /// `timeouts.controlPlaneComponentHealthCheck` (this value); see
    /// `move_v1beta3_control_plane_timeout`.
    KubeadmWithControlPlaneWait(&'static str, &'static str),
    /// kubeadm fails (v1.36's missing migration of UpgradeConfiguration); kubeforge writes
    /// what the newest kubeadm writes.
    NewestKubeadm(&'static str),
    /// Refused, with an error containing this.
    Refused(&'static str),
}

const CASES: [Case; 4] = [
    Case {
        name: "v1beta3",
        input: include_str!("../testdata/migrate/v1beta3/input.yaml"),
        outcomes: [
            (
                35,
                Outcome::Kubeadm(include_str!("../testdata/migrate/v1beta3/v1.35.yaml")),
            ),
            (
                36,
                Outcome::Kubeadm(include_str!("../testdata/migrate/v1beta3/v1.36.yaml")),
            ),
            (
                37,
                // kubeadm judges the documents in the order of their group, version and kind.
                Outcome::Refused(
                    "your configuration file uses an old API spec: \"kubeadm.k8s.io/v1beta3\" \
                     (kind: \"ClusterConfiguration\"). Please use kubeadm v1.36 instead",
                ),
            ),
        ],
    },
    Case {
        name: "v1beta4",
        input: include_str!("../testdata/migrate/v1beta4/input.yaml"),
        outcomes: [
            (
                35,
                Outcome::KubeadmWithControlPlaneWait(
                    include_str!("../testdata/migrate/v1beta4/v1.35.yaml"),
                    "10m0s",
                ),
            ),
            (
                36,
                Outcome::KubeadmWithControlPlaneWait(
                    include_str!("../testdata/migrate/v1beta4/v1.36.yaml"),
                    "10m0s",
                ),
            ),
            (
                37,
                Outcome::Kubeadm(include_str!("../testdata/migrate/v1beta4/v1.37.yaml")),
            ),
        ],
    },
    Case {
        name: "v1",
        input: include_str!("../testdata/migrate/v1/input.yaml"),
        outcomes: [
            (
                35,
                Outcome::Refused("unknown kubeadm config API version \"kubeadm.k8s.io/v1\""),
            ),
            (
                36,
                Outcome::Refused("unknown kubeadm config API version \"kubeadm.k8s.io/v1\""),
            ),
            (
                37,
                Outcome::Kubeadm(include_str!("../testdata/migrate/v1/v1.37.yaml")),
            ),
        ],
    },
    Case {
        name: "upgrade",
        input: include_str!("../testdata/migrate/upgrade/input.yaml"),
        outcomes: [
            (
                35,
                Outcome::Kubeadm(include_str!("../testdata/migrate/upgrade/v1.35.yaml")),
            ),
            (
                36,
                Outcome::NewestKubeadm(include_str!("../testdata/migrate/upgrade/v1.37.yaml")),
            ),
            (
                37,
                Outcome::Kubeadm(include_str!("../testdata/migrate/upgrade/v1.37.yaml")),
            ),
        ],
    },
];

/// The input with the release's version as kubernetesVersion, as regenerate.sh writes it.
fn input_for(input: &str, release: Release) -> String {
    input
        .lines()
        .map(|line| match line.strip_prefix("kubernetesVersion: ") {
            Some(_) => format!("kubernetesVersion: {}\n", release.newest_version()),
            None => format!("{line}\n"),
        })
        .collect()
}

#[test]
fn migrate_writes_what_each_releases_kubeadm_writes() {
    for case in &CASES {
        for (minor, outcome) in &case.outcomes {
            let release = release(*minor);
            let options = MigrateOptions {
                kubernetes_version: Some(release.newest_version()),
                allow_experimental_api: case.name == "v1",
            };
            let migrated = migrate(&input_for(case.input, release), &options);
            let context = format!("{} as v1.{minor}", case.name);
            match outcome {
                Outcome::Kubeadm(kubeadm) | Outcome::NewestKubeadm(kubeadm) => {
                    assert_eq!(migrated.expect(&context).yaml, *kubeadm, "{context}");
                }
                Outcome::KubeadmWithControlPlaneWait(kubeadm, wait) => {
                    let zero = "  controlPlaneComponentHealthCheck: 0s\n";
                    assert!(kubeadm.contains(zero), "{context}: kubeadm's quirk is gone");
                    let expected = kubeadm.replacen(
                        zero,
                        &format!("  controlPlaneComponentHealthCheck: {wait}\n"),
                        1,
                    );
                    assert_eq!(migrated.expect(&context).yaml, expected, "{context}");
                }
                Outcome::Refused(message) => {
                    let error = migrated.expect_err(&context).to_string();
                    assert!(error.contains(message), "{context}: {error}");
                }
            }
        }
    }
}

#[test]
fn migrate_says_what_it_leaves_out() {
    let migrated = migrate(
        &input_for(CASES[1].input, release(37)),
        &MigrateOptions::default(),
    )
    .unwrap();
    assert!(
        migrated
            .warnings
            .iter()
            .any(|w| w.contains("its KubeletConfiguration is not written")),
        "{:?}",
        migrated.warnings
    );
    let options = MigrateOptions {
        kubernetes_version: Some("v1.35.4".into()),
        ..Default::default()
    };
    let migrated = migrate(CASES[3].input, &options).unwrap();
    assert_eq!(migrated.yaml, "");
    assert!(
        migrated.warnings[0].contains("kubeadm v1.35's config migrate leaves it out"),
        "{:?}",
        migrated.warnings
    );
}

#[test]
fn migrate_fills_what_kubeadm_reads_from_the_machine() {
    let migrated = migrate(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n",
        &MigrateOptions {
            kubernetes_version: Some("stable-1.36".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&migrated.yaml).unwrap();
    let init = &documents[0];
    assert_eq!(init["nodeRegistration"]["name"], "worker-a");
    assert_eq!(init["localAPIEndpoint"]["advertiseAddress"], "172.16.0.4");
    let token = init["bootstrapTokens"][0]["token"].as_str().unwrap();
    assert!(
        crate::config::validate::is_bootstrap_token(token),
        "{token}"
    );
    // kubeadm's default `stable-1` is, offline, the version of the kubeadm acted as.
    assert_eq!(documents[1]["kubernetesVersion"], "v1.36.3");
}

const V1BETA3_INIT: &str = "apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
nodeRegistration:
  kubeletExtraArgs:
    v: \"4\"
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: KUBERNETES_VERSION
";

#[test]
fn validate_warns_about_v1beta3_as_each_kubeadm_does() {
    let deprecated = |kind: &str| {
        format!(
            "your configuration file uses a deprecated API spec: \"kubeadm.k8s.io/v1beta3\" \
             (kind: \"{kind}\"). Please use 'kubeadm config migrate --old-config \
             old-config-file --new-config new-config-file', which will write the new, similar \
             spec using a newer API version."
        )
    };
    let for_version = |version: &str| V1BETA3_INIT.replace("KUBERNETES_VERSION", version);
    let warnings = validate(&for_version("v1.36.0"), &ValidateOptions::default()).unwrap();
    // One a document, in kubeadm's order (by kind), whatever the file's.
    assert_eq!(
        warnings,
        [
            deprecated("ClusterConfiguration"),
            deprecated("InitConfiguration")
        ]
    );
    let allowed = ValidateOptions {
        allow_deprecated_api: true,
        ..Default::default()
    };
    assert!(
        validate(&for_version("v1.36.0"), &allowed)
            .unwrap()
            .is_empty()
    );
    // kubeadm v1.35's validate has no --allow-deprecated-api and never warns.
    let options = ValidateOptions::default();
    assert!(
        validate(&for_version("v1.35.1"), &options)
            .unwrap()
            .is_empty()
    );
    let error = validate(&for_version("v1.37.0"), &options)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("old API spec") && error.contains("document 2 (ClusterConfiguration)"),
        "{error}"
    );
}

#[test]
fn validate_reads_v1_only_when_allowed_and_checks_merge_methods() {
    let v1 = "apiVersion: kubeadm.k8s.io/v1
kind: ClusterConfiguration
apiServer:
  extraArgs:
  - name: authorization-mode
    value: \",Webhook\"
    mergeMethod: append
  - name: audit-log-path
    value: /a
    mergeMethod: Append
";
    let error = validate(v1, &ValidateOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        error.ends_with(
            "experimental API spec: \"kubeadm.k8s.io/v1\" (kind: \"ClusterConfiguration\") is \
             not allowed. You can use the --allow-experimental-api flag if the command supports \
             it."
        ),
        "{error}"
    );
    let allowed = ValidateOptions {
        allow_experimental_api: true,
        ..Default::default()
    };
    let error = validate(v1, &allowed).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "config file {:?}, document 1 (ClusterConfiguration): invalid configuration: \
             apiServer.extraArgs: Invalid value: \"index 1\": argument has an invalid merge method",
            error_path(&error)
        )
    );
    let fixed = v1.replace("Append", "prepend");
    assert!(validate(&fixed, &allowed).unwrap().is_empty());
}

/// The file name the error quotes (each test writes to its own temporary directory).
fn error_path(error: &str) -> String {
    let start = error.find('"').unwrap() + 1;
    let end = start + error[start..].find('"').unwrap();
    error[start..end].to_owned()
}

#[test]
fn validate_checks_join_reset_and_upgrade_with_kubeadms_messages() {
    let error = validate(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
nodeRegistration:
  name: worker-b
discovery:
  bootstrapToken:
    token: abcdef.0123456789abcdef
    apiServerEndpoint: 10.0.0.1
caCertPath: ca.pem
",
        &ValidateOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("invalid JoinConfiguration (3 problems):"),
        "{error}"
    );
    for expected in [
        "discovery.bootstrapToken.caCertHashes: Invalid value: \"\": using token-based \
         discovery without caCertHashes can be unsafe.",
        "discovery.bootstrapToken.apiServerEndpoint: Invalid value: \"10.0.0.1\": address \
         10.0.0.1: missing port in address",
        "caCertPath: Invalid value: \"ca.pem\": the ca certificate path must be an absolute path",
    ] {
        assert!(error.contains(expected), "{error}");
    }
    let error = validate(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\nunmountFlags: [MNT_LAZY]\n",
        &ValidateOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.ends_with(
            "invalid ResetConfiguration: unmountFlags: Invalid value: \"index 0\": unknown \
             unmount flag MNT_LAZY"
        ),
        "{error}"
    );
    let error = validate(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\nnode:\n  patches:\n    directory: patches\n",
        &ValidateOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.ends_with(
            "invalid UpgradeConfiguration: node.patches.directory: Invalid value: \"patches\": \
             path is not absolute"
        ),
        "{error}"
    );
}

#[test]
fn acting_as_a_newer_kubeadm_refuses_what_it_cannot_deploy() {
    let file = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.35.4\n";
    let options = ValidateOptions {
        kubernetes_version: Some("v1.37.2".into()),
        ..Default::default()
    };
    let error = validate(file, &options).unwrap_err().to_string();
    assert!(
        error.contains(
            "kubernetesVersion: Invalid value: \"v1.35.4\": this version of kubeadm only \
             supports deploying clusters with the control plane version >= 1.36.0. Current \
             version: v1.35.4"
        ),
        "{error}"
    );
    assert!(validate(file, &ValidateOptions::default()).is_ok());
    let options = ValidateOptions {
        kubernetes_version: Some("v1.38.0".into()),
        ..Default::default()
    };
    let error = validate(file, &options).unwrap_err().to_string();
    assert!(
        error.starts_with("invalid value \"v1.38.0\" for flag --kubernetes-version")
            && error.contains("v1.35.0 to v1.37.x"),
        "{error}"
    );
}

#[test]
fn an_unknown_api_version_lists_the_ones_read_for_the_target() {
    let error = validate(
        "apiVersion: kubeadm.k8s.io/v1beta9\nkind: InitConfiguration\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v1.36.0\n",
        &ValidateOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.ends_with(
            "document 1 (InitConfiguration): unknown kubeadm config API version \
             \"kubeadm.k8s.io/v1beta9\" (kind \"InitConfiguration\"); kubeforge reads \
             kubeadm.k8s.io/v1beta4 and kubeadm.k8s.io/v1beta3 (deprecated) for Kubernetes v1.36"
        ),
        "{error}"
    );
}

#[test]
fn v1beta3s_control_plane_wait_moves_as_kubeadm_v1_36_moves_it() {
    let file = |timeout: &str| {
        format!(
            "apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
kubernetesVersion: v1.36.3
apiServer:
  timeoutForControlPlane: {timeout}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
timeouts:
  controlPlaneComponentHealthCheck: 3m
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  file:
    kubeConfigPath: https://example.com/discovery.conf
timeouts:
  controlPlaneComponentHealthCheck: 7m
"
        )
    };
    let waits = |timeout: &str| -> Vec<String> {
        let migrated = migrate(&file(timeout), &MigrateOptions::default()).unwrap();
        migrated
            .yaml
            .lines()
            .filter_map(|line| line.strip_prefix("  controlPlaneComponentHealthCheck: "))
            .map(String::from)
            .collect()
    };
    // Over both documents' own values, as kubeadm writes it.
    assert_eq!(waits("5m"), ["5m0s", "5m0s"]);
    // kubeadm writes `0s` for the InitConfiguration here; kubeforge keeps its value.
    assert_eq!(waits("0s"), ["3m0s", "7m0s"]);
}
