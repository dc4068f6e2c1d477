//! How `kubeforge init` behaves around the files: re-runs reuse, a foreign certificate is
//! refused, CAs are never replaced, `--dry-run` touches nothing, bad input is refused before
//! anything is written.

mod common;

use std::path::Path;

use common::*;

const CERTS: &[&str] = &[
    "ca",
    "apiserver",
    "apiserver-kubelet-client",
    "front-proxy-ca",
    "front-proxy-client",
    "etcd/ca",
    "etcd/server",
    "etcd/peer",
    "etcd/healthcheck-client",
    "apiserver-etcd-client",
];

const KUBECONFIGS: &[&str] = &[
    "admin.conf",
    "super-admin.conf",
    "kubelet.conf",
    "controller-manager.conf",
    "scheduler.conf",
];

const MANIFESTS: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

fn assert_empty(root: &Path, what: &str) {
    let entries = walk(root);
    assert!(
        entries.is_empty(),
        "{what} wrote under the root: {entries:?}"
    );
}

#[test]
fn rerunning_certs_and_kubeconfig_reuses_every_file() {
    let node = init_node("defaults.yaml");
    let config = config("defaults.yaml");
    let before = snapshot(node.root.path());
    let certs = phase(node.root.path(), "certs", "all", &config, &[]);
    certs.assert_success("certs all, again");
    let kubeconfig = phase(node.root.path(), "kubeconfig", "all", &config, &[]);
    kubeconfig.assert_success("kubeconfig all, again");
    assert_eq!(
        snapshot(node.root.path()),
        before,
        "a re-run changes no file"
    );

    for name in CERTS {
        let ca = name.ends_with("ca");
        let line = if ca {
            format!("[certs] Using existing {name} certificate authority")
        } else {
            format!("[certs] Using existing {name} certificate and key on disk")
        };
        assert!(
            certs.stdout.contains(&line),
            "{line:?} missing from:\n{}",
            certs.stdout
        );
    }
    assert!(
        !certs.stdout.contains("Generating"),
        "nothing is generated again:\n{}",
        certs.stdout
    );
    assert!(
        certs.stdout.contains("Using the existing \"sa\" key"),
        "{}",
        certs.stdout
    );
    for file in KUBECONFIGS {
        let line =
            format!("[kubeconfig] Using existing kubeconfig file: \"/etc/kubernetes/{file}\"");
        assert!(
            kubeconfig.stdout.contains(&line),
            "{line:?} missing from:\n{}",
            kubeconfig.stdout
        );
    }
    assert!(
        !kubeconfig.stdout.contains("Writing"),
        "{}",
        kubeconfig.stdout
    );
}

/// A CA and a leaf signed by it, both unrelated to the cluster's.
fn foreign_pair(cn: &str) -> (String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kubernetes");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256)
        .or_else(|_| rcgen::KeyPair::generate())
        .unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["kubernetes".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&leaf_key, &issuer).unwrap();
    (cert.pem(), leaf_key.serialize_pem())
}

#[test]
fn a_leaf_signed_by_another_ca_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let config = config("defaults.yaml");
    phase(root.path(), "certs", "all", &config, &[]).assert_success("certs all");
    let pki = root.path().join("etc/kubernetes/pki");
    let (cert, key) = foreign_pair("kube-apiserver");
    std::fs::write(pki.join("apiserver.crt"), &cert).unwrap();
    std::fs::write(pki.join("apiserver.key"), &key).unwrap();
    let ca_before = (
        std::fs::read(pki.join("ca.crt")).unwrap(),
        std::fs::read(pki.join("ca.key")).unwrap(),
    );

    for sub in ["all", "apiserver"] {
        let output = phase(root.path(), "certs", sub, &config, &[]);
        output.assert_failure(&format!("certs {sub} with a foreign apiserver.crt"));
        assert!(
            output.stderr.contains("apiserver"),
            "the error names the certificate:\n{}",
            output.stderr
        );
        assert_eq!(
            std::fs::read_to_string(pki.join("apiserver.crt")).unwrap(),
            cert,
            "apiserver.crt is left alone"
        );
        assert_eq!(
            std::fs::read_to_string(pki.join("apiserver.key")).unwrap(),
            key,
            "apiserver.key is left alone"
        );
    }
    assert_eq!(
        (
            std::fs::read(pki.join("ca.crt")).unwrap(),
            std::fs::read(pki.join("ca.key")).unwrap()
        ),
        ca_before,
        "the CA is untouched"
    );
}

#[test]
fn certs_ca_never_changes_an_existing_ca() {
    let root = tempfile::tempdir().unwrap();
    let config = config("defaults.yaml");
    phase(root.path(), "certs", "all", &config, &[]).assert_success("certs all");
    let pki = root.path().join("etc/kubernetes/pki");
    let before = snapshot(&pki);

    let output = phase(root.path(), "certs", "ca", &config, &[]);
    output.assert_success("certs ca with an existing CA");
    assert!(
        output
            .stdout
            .contains("Using existing ca certificate authority"),
        "{}",
        output.stdout
    );
    assert_eq!(
        snapshot(&pki),
        before,
        "certs ca changes nothing when the CA exists"
    );

    // Without its key the CA is external (kubeadm's external-CA mode): still never replaced,
    // and no key is invented for it.
    let ca_crt = std::fs::read(pki.join("ca.crt")).unwrap();
    std::fs::remove_file(pki.join("ca.key")).unwrap();
    let output = phase(root.path(), "certs", "ca", &config, &[]);
    output.assert_success("certs ca with ca.crt but no ca.key");
    assert_eq!(
        std::fs::read(pki.join("ca.crt")).unwrap(),
        ca_crt,
        "ca.crt unchanged"
    );
    assert!(
        !pki.join("ca.key").exists(),
        "no new ca.key is written for an existing ca.crt"
    );
}

/// No private key material, in PEM or base64-of-PEM form.
fn assert_no_secrets(text: &str) {
    for secret in [
        "PRIVATE KEY",
        "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVkt",
        "LS0tLS1CRUdJTiBFQyBQUklWQVRFIEtFWS",
        "client-key-data",
    ] {
        assert!(
            !text.contains(secret),
            "the plan shows key material ({secret:?}):\n{text}"
        );
    }
}

fn planned_write(root: &Path, node_path: &str, mode: u32) -> String {
    format!(
        "Would write file \"{}\" (mode {mode:04o})",
        root.join(node_path.trim_start_matches('/')).display()
    )
}

#[test]
fn dry_run_certs_writes_nothing_and_shows_every_file() {
    let root = tempfile::tempdir().unwrap();
    let output = phase(
        root.path(),
        "certs",
        "all",
        &config("custom.yaml"),
        &["--dry-run"],
    );
    output.assert_success("certs all --dry-run");
    assert_empty(root.path(), "certs all --dry-run");
    for name in CERTS {
        for (ext, mode) in [("crt", 0o644), ("key", 0o600)] {
            let line = planned_write(root.path(), &format!("/etc/kf/pki/{name}.{ext}"), mode);
            assert!(
                output.stdout.contains(&line),
                "{line:?} missing from:\n{}",
                output.stdout
            );
        }
    }
    // kubeadm writes sa.pub as it writes keys (keyutil.WriteKey, 0600).
    for (file, mode) in [("sa.key", 0o600), ("sa.pub", 0o600)] {
        let line = planned_write(root.path(), &format!("/etc/kf/pki/{file}"), mode);
        assert!(
            output.stdout.contains(&line),
            "{line:?} missing from:\n{}",
            output.stdout
        );
    }
    // The certificate summary: subject, issuer, SANs, expiry.
    assert!(
        output.stdout.contains("CN=kube-apiserver"),
        "{}",
        output.stdout
    );
    assert!(
        output.stdout.contains("DNS:api.forge.example"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("IP:10.200.0.1"), "{}", output.stdout);
    assert!(
        output.stdout.contains("CN=kube-apiserver-kubelet-client"),
        "{}",
        output.stdout
    );
    assert!(output.stdout.contains("not after"), "{}", output.stdout);
    assert_no_secrets(&output.stdout);
    assert_no_secrets(&output.stderr);
}

fn assert_full_plan(root: &Path, output: &Output) {
    for name in CERTS {
        for (ext, mode) in [("crt", 0o644), ("key", 0o600)] {
            let line = planned_write(root, &format!("/etc/kubernetes/pki/{name}.{ext}"), mode);
            assert!(
                output.stdout.contains(&line),
                "{line:?} missing from:\n{}",
                output.stdout
            );
        }
    }
    for file in KUBECONFIGS {
        let line = planned_write(root, &format!("/etc/kubernetes/{file}"), 0o600);
        assert!(
            output.stdout.contains(&line),
            "{line:?} missing from:\n{}",
            output.stdout
        );
    }
    for manifest in MANIFESTS {
        let line = planned_write(
            root,
            &format!("/etc/kubernetes/manifests/{manifest}.yaml"),
            0o600,
        );
        assert!(
            output.stdout.contains(&line),
            "{line:?} missing from:\n{}",
            output.stdout
        );
    }
    // Manifests are shown in full.
    assert!(
        output.stdout.contains("- --advertise-address="),
        "{}",
        output.stdout
    );
    assert_no_secrets(&output.stdout);
    assert_no_secrets(&output.stderr);
}

#[test]
fn dry_run_init_writes_nothing_and_shows_every_file() {
    let root = tempfile::tempdir().unwrap();
    let config = config("defaults.yaml");
    let skip = format!("--skip-phases={CLUSTER_PHASES}");
    let output = run(
        Some(root.path()),
        &[
            "init",
            "--dry-run",
            "--config",
            config.to_str().unwrap(),
            &skip,
        ],
    );
    output.assert_success("init --dry-run (node phases)");
    assert_empty(root.path(), "init --dry-run");
    assert_full_plan(root.path(), &output);

    // Without skipping the phases this build lacks, the plan of the node phases is still
    // printed and still nothing is written.
    let output = run(
        Some(root.path()),
        &["init", "--dry-run", "--config", config.to_str().unwrap()],
    );
    assert_empty(root.path(), "init --dry-run (all phases)");
    assert_full_plan(root.path(), &output);
}

#[test]
fn invalid_configs_are_refused_with_the_field_named_and_nothing_written() {
    for (file, field) in [
        ("invalid-service-subnet.yaml", "networking.serviceSubnet"),
        ("unknown-field.yaml", "certificatesDirectory"),
        ("invalid-cert-san.yaml", "apiServer.certSANs"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let config = config(file);
        for args in [
            vec![
                "init",
                "phase",
                "certs",
                "all",
                "--config",
                config.to_str().unwrap(),
            ],
            vec!["init", "--dry-run", "--config", config.to_str().unwrap()],
        ] {
            let output = run(Some(root.path()), &args);
            output.assert_failure(&format!("{args:?} with {file}"));
            assert!(
                output.stderr.contains(field),
                "{file}: the error names {field}:\n{}",
                output.stderr
            );
            assert_empty(root.path(), file);
        }
    }
}

#[test]
fn config_mixed_with_a_disallowed_flag_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let config = config("defaults.yaml");
    for args in [
        vec![
            "init",
            "phase",
            "certs",
            "all",
            "--config",
            config.to_str().unwrap(),
            "--service-cidr",
            "10.0.0.0/16",
        ],
        vec![
            "init",
            "--config",
            config.to_str().unwrap(),
            "--apiserver-advertise-address",
            "10.0.0.1",
            "--dry-run",
        ],
    ] {
        let output = run(Some(root.path()), &args);
        output.assert_failure(&format!("{args:?}"));
        let flag = args
            .iter()
            .find(|a| a.starts_with("--") && **a != "--config" && **a != "--dry-run")
            .unwrap();
        assert!(
            output.stderr.contains(flag.trim_start_matches("--")),
            "the refused flag is named:\n{}",
            output.stderr
        );
        assert_empty(root.path(), "a refused flag");
    }
}

#[test]
fn printed_init_defaults_parse_and_are_accepted_by_init() {
    let output = run(None, &["config", "print", "init-defaults"]);
    output.assert_success("config print init-defaults");
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&output.stdout)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{}", output.stdout));
    let kinds: Vec<&str> = documents
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["InitConfiguration", "ClusterConfiguration"]);
    for document in &documents {
        assert_eq!(document["apiVersion"], "kubeadm.k8s.io/v1beta4");
    }
    assert_eq!(
        documents[0]["localAPIEndpoint"]["advertiseAddress"],
        "1.2.3.4"
    );
    assert_eq!(
        documents[0]["bootstrapTokens"][0]["token"],
        "abcdef.0123456789abcdef"
    );
    assert_eq!(documents[1]["networking"]["serviceSubnet"], "10.96.0.0/12");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("init-defaults.yaml");
    std::fs::write(&file, &output.stdout).unwrap();
    let root = tempfile::tempdir().unwrap();
    let skip = format!("--skip-phases={CLUSTER_PHASES}");
    let init = run(
        Some(root.path()),
        &[
            "init",
            "--dry-run",
            "--config",
            file.to_str().unwrap(),
            &skip,
        ],
    );
    init.assert_success("init --dry-run --config <printed defaults>");
    assert_empty(root.path(), "init --dry-run");
    assert!(
        init.stdout.contains("IP:1.2.3.4"),
        "the example address is used:\n{}",
        init.stdout
    );
    assert!(
        init.stdout.contains("DNS:node"),
        "the example node name is used:\n{}",
        init.stdout
    );
}

#[test]
fn unknown_skip_phase_is_an_error() {
    let root = tempfile::tempdir().unwrap();
    let config = config("defaults.yaml");
    for skip in [
        "--skip-phases=nonexistent",
        "--skip-phases=certs,bogus-phase/sub",
    ] {
        let output = run(
            Some(root.path()),
            &[
                "init",
                "--dry-run",
                "--config",
                config.to_str().unwrap(),
                skip,
            ],
        );
        output.assert_failure(skip);
        let name = skip.rsplit([',', '=']).next().unwrap();
        assert!(
            output.stderr.contains(name),
            "the unknown phase is named:\n{}",
            output.stderr
        );
        assert_empty(root.path(), skip);
    }
}

#[test]
fn unknown_phase_or_sub_phase_is_an_error_listing_the_choices() {
    let root = tempfile::tempdir().unwrap();
    let config = config("defaults.yaml");
    let output = phase(root.path(), "nonexistent", "all", &config, &[]);
    output.assert_failure("init phase nonexistent");
    for phase in [
        "preflight",
        "certs",
        "kubeconfig",
        "etcd",
        "control-plane",
        "kubelet-start",
        "addon",
    ] {
        assert!(
            output.stderr.contains(phase),
            "{phase} is listed:\n{}",
            output.stderr
        );
    }
    // A refused command leaves no trace, not even an empty journal.
    assert_empty(root.path(), "init phase nonexistent all");
    let output = run(
        Some(root.path()),
        &[
            "init",
            "phase",
            "nonexistent",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    output.assert_failure("init phase nonexistent (no sub-phase)");
    assert!(output.stderr.contains("certs"), "{}", output.stderr);
    assert_empty(root.path(), "init phase nonexistent");

    let output = phase(root.path(), "certs", "bogus", &config, &[]);
    output.assert_failure("init phase certs bogus");
    for sub in ["apiserver", "etcd-ca", "sa"] {
        assert!(
            output.stderr.contains(sub),
            "sub-phase {sub} is listed:\n{}",
            output.stderr
        );
    }
    assert_empty(root.path(), "init phase certs bogus");
}

/// kubelet-start stops the kubelet, writes its files and restarts it: by the time the service
/// command runs `restart`, the files are on disk (the phase's writes land before any service
/// action), and `stop` came before them.
#[test]
fn the_kubelet_restarts_after_its_files_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let log = dir.path().join("service.log");
    let script = dir.path().join("service.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif test -f {config}; then state=present; else state=missing; fi\necho \"$1 $2 config.yaml:$state\" >> {log}\n",
            config = root.join("var/lib/kubelet/config.yaml").display(),
            log = log.display()
        ),
    )
    .unwrap();
    let service_command = format!("sh {}", script.display());
    let config = config("defaults.yaml");
    let out = run(
        Some(&root),
        &[
            "--service-command",
            &service_command,
            "init",
            "phase",
            "kubelet-start",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    out.assert_success("kubelet-start");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "stop kubelet config.yaml:missing\nrestart kubelet config.yaml:present\n"
    );
    assert!(
        out.stdout.contains("[kubelet-start] Starting the kubelet"),
        "{}",
        out.all()
    );
}
