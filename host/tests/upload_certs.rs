//! The upload-certs phase against the real control plane: kubeforge brings a control plane up
//! on a real node of the test env (tests/harness: its own containerd and the real kubelet), and
//! `kubeforge init phase upload-certs` runs against it there. What it did is checked through
//! the API (kube-rs), decrypting every value of `kube-system/kubeadm-certs` with AES-256-GCM as
//! a joining kubeadm does; of kubeforge's output only the printed certificate key is read. The
//! real kubeadm in the node uploads over it and kubeforge takes it back. Needs root and the
//! testenv binaries: a missing one fails the test with the command that builds them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use common::{Output, RealCluster, poll_until};

/// The node name of the tests without a cluster (a cluster's node is named by the test env).
const NODE_NAME: &str = "kf-upload-certs";
/// A bootstrap token of the default node group (created by the bootstrap-token phase) to act as
/// a joining control plane would.
const JOIN_TOKEN: &str = "kfuc00.0123456789abcdef";
const DEFAULT_NODE_TOKEN: &str = "system:bootstrappers:kubeadm:default-node-token";
const TOKEN_DESCRIPTION: &str = "Proxy for managing TTL for the kubeadm-certs secret";
/// kubeadm-certs' keys with local etcd, and the files under the certificates dir they hold.
const UPLOADED: [(&str, &str); 8] = [
    ("ca.crt", "ca.crt"),
    ("ca.key", "ca.key"),
    ("front-proxy-ca.crt", "front-proxy-ca.crt"),
    ("front-proxy-ca.key", "front-proxy-ca.key"),
    ("sa.key", "sa.key"),
    ("sa.pub", "sa.pub"),
    ("etcd-ca.crt", "etcd/ca.crt"),
    ("etcd-ca.key", "etcd/ca.key"),
];

fn kubeadm_config(certificate_key: Option<&str>) -> String {
    kubeadm_config_for(NODE_NAME, "127.0.0.1", certificate_key)
}

/// The test's configuration for node `node` advertising `advertise`, with `certificateKey`
/// when given.
fn kubeadm_config_for(node: &str, advertise: &str, certificate_key: Option<&str>) -> String {
    let key = certificate_key
        .map(|key| format!("certificateKey: {key}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
{key}bootstrapTokens:
- token: {JOIN_TOKEN}
localAPIEndpoint:
  advertiseAddress: {advertise}
  bindPort: 6443
nodeRegistration:
  name: {node}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
clusterName: kubeforge-upload-certs
networking:
  podSubnet: 10.244.0.0/16
"
    )
}

/// A scratch directory with the node's root (not created) and `kubeadm.yaml` holding `config`.
fn scratch(config: &str) -> Result<(tempfile::TempDir, PathBuf, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let path = dir.path().join("kubeadm.yaml");
    std::fs::write(&path, config)?;
    Ok((dir, root, path))
}

/// The test config with the API server on a port nothing listens on, and `extra` appended to the
/// ClusterConfiguration: a dry run then plans without a cluster.
fn without_cluster(extra: &str) -> String {
    kubeadm_config(None).replace("bindPort: 6443", "bindPort: 1") + extra
}

/// `kubeforge --root ROOT init phase upload-certs ARGS`, which must succeed.
fn upload_certs(root: &Path, args: &[&str]) -> Output {
    let mut all = vec!["init", "phase", "upload-certs"];
    all.extend_from_slice(args);
    let output = common::run(Some(root), &all);
    output.assert_success(&format!("init phase upload-certs {}", args.join(" ")));
    output
}

/// The key kubeforge printed after `[upload-certs] Using certificate key:`, if it did.
fn printed_key(output: &Output) -> Option<String> {
    let mut lines = output.stdout.lines();
    lines.find(|l| *l == "[upload-certs] Using certificate key:")?;
    lines.next().map(str::to_string)
}

/// kubeadm's `DecryptBytes`: AES-256-GCM, the nonce in the first 12 bytes, no associated data.
fn open(hex_key: &str, sealed: &[u8]) -> Result<Vec<u8>> {
    let key = hex::decode(hex_key)?;
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).map_err(|_| {
            anyhow::anyhow!("the certificate key is not an AES-256 key: {hex_key}")
        })?);
    ensure!(sealed.len() > NONCE_LEN, "a sealed value without its nonce");
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow::anyhow!("nonce"))?;
    let mut in_out = ciphertext.to_vec();
    let plain = key
        .open_in_place(nonce, Aad::empty(), &mut in_out)
        .map_err(|_| anyhow::anyhow!("the value does not open with key {hex_key}"))?;
    Ok(plain.to_vec())
}

fn secrets(client: &Client) -> Api<Secret> {
    Api::namespaced(client.clone(), "kube-system")
}

fn data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect()
}

/// kubeadm-certs holds exactly kubeadm's keys, each the file of the node sealed with `key`.
/// Returns its owner's name.
async fn check_kubeadm_certs(cp: &RealCluster, client: &Client, key: &str) -> Result<String> {
    let secret = secrets(client).get("kubeadm-certs").await?;
    assert_eq!(secret.type_.as_deref(), Some("Opaque"));
    let values = data(&secret);
    let mut expected: Vec<&str> = UPLOADED.iter().map(|(name, _)| *name).collect();
    expected.sort_unstable();
    assert_eq!(
        values.keys().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    for (name, file) in UPLOADED {
        let on_disk = std::fs::read(cp.node.path("/etc/kubernetes/pki").join(file))?;
        let opened = open(key, &values[name]).with_context(|| name.to_string())?;
        ensure!(opened == on_disk, "{name} is not {file} of the node");
    }
    let owners = secret.metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    let owner = &owners[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("v1", "Secret", Some(true), Some(true))
    );
    // The owner is a bootstrap token Secret that expires in two hours and authenticates nobody.
    let token = secrets(client).get(&owner.name).await?;
    assert_eq!(token.metadata.uid.as_deref(), Some(owner.uid.as_str()));
    assert_eq!(
        token.type_.as_deref(),
        Some("bootstrap.kubernetes.io/token")
    );
    let token_data = data(&token);
    assert_eq!(
        token_data.keys().map(String::as_str).collect::<Vec<_>>(),
        ["description", "expiration", "token-id", "token-secret"]
    );
    let text = |key: &str| String::from_utf8(token_data[key].clone()).unwrap();
    assert_eq!(text("description"), TOKEN_DESCRIPTION);
    assert_eq!(owner.name, format!("bootstrap-token-{}", text("token-id")));
    let expiration =
        OffsetDateTime::parse(&text("expiration"), &Rfc3339).with_context(|| text("expiration"))?;
    let ahead = expiration - OffsetDateTime::now_utc();
    ensure!(
        ahead > time::Duration::minutes(115) && ahead <= time::Duration::hours(2),
        "the token expires {ahead} from now, not in two hours"
    );
    Ok(owner.name.clone())
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_certs_against_the_real_control_plane() -> Result<()> {
    let cp = RealCluster::create("upload-certs", 0)?;
    let address = cp.node.address.to_string();
    let config = cp.write_config(
        "kubeadm.yaml",
        &kubeadm_config_for(&cp.node.name, &address, None),
    )?;
    cp.boot(&config)?;
    cp.checked(check_upload_certs(&cp, &config)).await
}

/// `kubeforge init phase upload-certs ARGS` in the node, which must succeed.
fn upload_certs_on(cp: &RealCluster, args: &[&str]) -> Result<Output> {
    cp.init_phase(&[&["upload-certs"], args].concat())
}

async fn check_upload_certs(cp: &RealCluster, config: &Path) -> Result<()> {
    let cfg = config.to_str().unwrap();
    let address = cp.node.address.to_string();
    // Before any real run admin.conf may read nothing (kubeadm:cluster-admins is not bound yet).
    let super_admin = cp.client("super-admin.conf").await?;
    let nothing_uploaded = || async {
        ensure!(
            secrets(&super_admin)
                .get_opt("kubeadm-certs")
                .await?
                .is_none(),
            "kubeadm-certs exists"
        );
        ensure!(
            Api::<Role>::namespaced(super_admin.clone(), "kube-system")
                .get_opt("kubeadm:kubeadm-certs")
                .await?
                .is_none(),
            "the kubeadm:kubeadm-certs Role exists"
        );
        let tokens = secrets(&super_admin)
            .list(&ListParams::default().fields("type=bootstrap.kubernetes.io/token"))
            .await?;
        ensure!(tokens.items.is_empty(), "a bootstrap token Secret exists");
        Ok(())
    };

    // Without --upload-certs the phase is skipped, as kubeadm's.
    let skipped = upload_certs_on(cp, &["--config", cfg])?;
    ensure!(
        skipped
            .stdout
            .contains("[upload-certs] Skipping phase. Please see --upload-certs\n"),
        "{}",
        skipped.all()
    );
    ensure!(printed_key(&skipped).is_none(), "{}", skipped.all());
    nothing_uploaded().await?;

    // A dry run shows the Secret with its values withheld and sends nothing.
    let plan = upload_certs_on(cp, &["--upload-certs", "--dry-run", "--config", cfg])?;
    for line in [
        "[dryrun] [upload-certs] Would perform action APPLY on Secret kube-system/kubeadm-certs\n",
        "      ca.key: (withheld)\n",
        "      etcd-ca.key: (withheld)\n",
        "      token-secret: (withheld)\n",
        "[dryrun] [upload-certs] Would perform action APPLY on Role kube-system/kubeadm:kubeadm-certs\n",
        "[dryrun] [upload-certs] Would perform action APPLY on RoleBinding kube-system/kubeadm:kubeadm-certs\n",
    ] {
        ensure!(
            plan.stdout.contains(line),
            "{line:?} not in the plan:\n{}",
            plan.all()
        );
    }
    nothing_uploaded().await?;

    // The real run: a generated key, printed once the certificates are stored.
    let first = upload_certs_on(cp, &["--upload-certs", "--config", cfg])?;
    ensure!(
        first.stdout.contains(
            "[upload-certs] Storing the certificates in Secret \"kubeadm-certs\" in the \"kube-system\" Namespace\n"
        ),
        "{}",
        first.all()
    );
    let key = printed_key(&first).with_context(|| first.all())?;
    ensure!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "the certificate key {key:?} is not 64 hex digits"
    );
    let admin = cp.client("admin.conf").await?;
    let first_owner = check_kubeadm_certs(cp, &admin, &key).await?;

    // The RBAC: get on kubeadm-certs, and nothing else, for the default node token group ...
    let role = Api::<Role>::namespaced(admin.clone(), "kube-system")
        .get("kubeadm:kubeadm-certs")
        .await?;
    let rules = role.rules.unwrap_or_default();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        (
            &rules[0].verbs,
            rules[0].api_groups.clone().unwrap_or_default(),
            rules[0].resources.clone().unwrap_or_default(),
            rules[0].resource_names.clone().unwrap_or_default()
        ),
        (
            &vec!["get".to_string()],
            vec![String::new()],
            vec!["secrets".to_string()],
            vec!["kubeadm-certs".to_string()]
        )
    );
    let binding = Api::<RoleBinding>::namespaced(admin.clone(), "kube-system")
        .get("kubeadm:kubeadm-certs")
        .await?;
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("Role", "kubeadm:kubeadm-certs")
    );
    let subjects: Vec<(String, String)> = binding
        .subjects
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.kind, s.name))
        .collect();
    assert_eq!(subjects, [("Group".into(), DEFAULT_NODE_TOKEN.into())]);
    // ... as a joining control plane uses it: with a real bootstrap token of that group.
    cp.phase(config, &["bootstrap-token"])?;
    let joiner = token_client(cp)?;
    let fetched = poll_until(
        "the bootstrap token to read kubeadm-certs",
        Duration::from_secs(30),
        || async {
            Ok(secrets(&joiner)
                .get("kubeadm-certs")
                .await
                .ok()
                .map(|s| data(&s)))
        },
    )
    .await?;
    assert_eq!(fetched.len(), UPLOADED.len());
    match secrets(&joiner).get(&first_owner).await {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("the bootstrap token read {first_owner}: {other:?}"),
    }

    // A given key (`--certificate-key`, which kubeadm refuses next to --config) seals the
    // certificates and is printed; a re-run moves kubeadm-certs to a new token, as kubeadm.
    let given = "0123456789abcdef".repeat(4);
    let second = upload_certs_on(
        cp,
        &[
            "--upload-certs",
            "--certificate-key",
            &given,
            "--apiserver-advertise-address",
            &address,
            "--node-name",
            &cp.node.name,
            "--kubernetes-version",
            "v1.37.2",
        ],
    )?;
    assert_eq!(printed_key(&second).as_deref(), Some(given.as_str()));
    let second_owner = check_kubeadm_certs(cp, &admin, &given).await?;
    ensure!(second_owner != first_owner, "the same token twice");
    ensure!(
        secrets(&admin).get_opt(&first_owner).await?.is_some(),
        "the first run's token is kept until it expires, as kubeadm keeps it"
    );

    // certificateKey from the config file, with --skip-certificate-key-print: used, not shown.
    let quiet_key = "fedcba9876543210".repeat(4);
    let quiet_config = cp.write_config(
        "quiet.yaml",
        &kubeadm_config_for(&cp.node.name, &address, Some(&quiet_key)),
    )?;
    let quiet_args = [
        "--upload-certs",
        "--skip-certificate-key-print",
        "--config",
        quiet_config.to_str().unwrap(),
    ];
    let quiet = upload_certs_on(cp, &quiet_args)?;
    ensure!(
        printed_key(&quiet).is_none() && !quiet.all().contains(&quiet_key),
        "{}",
        quiet.all()
    );
    check_kubeadm_certs(cp, &admin, &quiet_key).await?;

    // The real kubeadm in the node uploads over it (and its Secret decrypts to the same files,
    // read the same way: the oracle for the format); then kubeforge takes kubeadm-certs back,
    // with its own token as the only controller.
    let kubeadm_key = "0f1e2d3c4b5a6978".repeat(4);
    let kubeadm_config = cp.write_config(
        "kubeadm-oracle.yaml",
        &kubeadm_config_for(&cp.node.name, &address, Some(&kubeadm_key)),
    )?;
    cp.kubeadm(&[
        "init",
        "phase",
        "upload-certs",
        "--upload-certs",
        "--config",
        kubeadm_config.to_str().unwrap(),
    ])?;
    check_kubeadm_certs(cp, &admin, &kubeadm_key).await?;
    upload_certs_on(cp, &quiet_args)?;
    let quiet_owner = check_kubeadm_certs(cp, &admin, &quiet_key).await?;

    // When the token cleaner removes the owner token, kube-controller-manager's garbage
    // collector removes kubeadm-certs with it.
    secrets(&admin)
        .delete(&quiet_owner, &DeleteParams::background())
        .await?;
    poll_until(
        "kubeadm-certs to be collected with its token",
        Duration::from_secs(90),
        || async {
            Ok(secrets(&admin)
                .get_opt("kubeadm-certs")
                .await?
                .is_none()
                .then_some(()))
        },
    )
    .await?;
    Ok(())
}

/// A client that authenticates with [`JOIN_TOKEN`] only, trusting the cluster CA.
fn token_client(cp: &RealCluster) -> Result<Client> {
    let ca = cp.node.read("/etc/kubernetes/pki/ca.crt")?;
    let mut config = kube::Config::new(cp.server().parse()?);
    config.root_cert = Some(vec![common::certificate_der(&ca, "ca.crt")]);
    config.auth_info.token = Some(JOIN_TOKEN.to_string().into());
    Ok(Client::try_from(config)?)
}

/// With external etcd kubeadm uploads `etcd.external.caFile`/`certFile`/`keyFile` as
/// `external-etcd*`. kubeforge seals only files under the certificates dir: one elsewhere is
/// refused by field before anything is planned or sent. (No cluster needed: a dry run against
/// an address nothing listens on.)
#[test]
fn external_etcd_files_are_uploaded_from_the_certificates_dir_only() -> Result<()> {
    let external = |ca_file: &str| {
        without_cluster(&format!(
            "etcd:
  external:
    endpoints: [\"https://127.0.0.1:2379\"]
    caFile: {ca_file}
    certFile: /etc/kubernetes/pki/apiserver-etcd-client.crt
    keyFile: /etc/kubernetes/pki/apiserver-etcd-client.key
"
        ))
    };
    let (_dir, root, config) = scratch(&external("/etc/kubernetes/pki/etcd/ca.crt"))?;
    for (phase, sub) in [("certs", "all"), ("kubeconfig", "all")] {
        common::phase(&root, phase, sub, &config, &[])
            .assert_success(&format!("init phase {phase} {sub}"));
    }
    let cfg = config.to_str().unwrap();
    let plan = upload_certs(&root, &["--upload-certs", "--dry-run", "--config", cfg]);
    for key in [
        "external-etcd-ca.crt",
        "external-etcd.crt",
        "external-etcd.key",
    ] {
        ensure!(
            plan.stdout.contains(&format!("      {key}: (withheld)\n")),
            "{key} not in the plan:\n{}",
            plan.all()
        );
    }
    ensure!(!plan.stdout.contains("etcd-ca.key"), "{}", plan.all());

    std::fs::write(&config, external("/etc/etcd/ca.crt"))?;
    let refused = common::run(
        Some(&root),
        &[
            "init",
            "phase",
            "upload-certs",
            "--upload-certs",
            "--dry-run",
            "--config",
            cfg,
        ],
    );
    refused.assert_failure("upload-certs with caFile outside the certificates dir");
    ensure!(
        refused.stderr.contains("etcd.external.caFile: /etc/etcd/ca.crt is not under the certificates directory /etc/kubernetes/pki"),
        "{}",
        refused.all()
    );
    ensure!(
        [
            "Storing the certificates",
            "Would perform",
            "Using certificate key"
        ]
        .iter()
        .all(|line| !refused.stdout.contains(line)),
        "{}",
        refused.all()
    );
    Ok(())
}

/// A whole `init --upload-certs` passes the certificate key from upload-certs to
/// show-join-command, which prints kubeadm's control-plane join with `--certificate-key` and its
/// warning (with controlPlaneEndpoint set, as kubeadm shows the control-plane join only then).
/// A dry run, so no cluster is needed.
#[test]
fn init_with_upload_certs_shows_the_control_plane_join_with_the_key() -> Result<()> {
    let (_dir, root, config) = scratch(&without_cluster("controlPlaneEndpoint: lb.example:1\n"))?;
    let output = common::run(
        Some(&root),
        &[
            "init",
            "--dry-run",
            "--upload-certs",
            "--config",
            config.to_str().unwrap(),
            "--skip-phases=kubelet-start,wait-control-plane,mark-control-plane,kubelet-finalize",
        ],
    );
    output.assert_success("init --dry-run --upload-certs");
    let key = printed_key(&output).with_context(|| output.all())?;
    let expected = format!(
        "You can now join any number of control-plane nodes running the following command on each as root:

  kubeadm join lb.example:1 --token {JOIN_TOKEN} \\
\t--discovery-token-ca-cert-hash sha256:"
    );
    ensure!(output.stdout.contains(&expected), "{}", output.all());
    let warning = format!(
        " \\
\t--control-plane --certificate-key {key}

Please note that the certificate-key gives access to cluster sensitive data, keep it secret!
As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use
\"kubeadm init phase upload-certs --upload-certs\" to reload certs afterward.

Then you can join any number of worker nodes"
    );
    ensure!(output.stdout.contains(&warning), "{}", output.all());
    ensure!(!root.exists(), "a dry run wrote {}", root.display());
    Ok(())
}
