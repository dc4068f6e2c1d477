//! The API phases against the real control plane: kubeforge runs inside a real node of the test
//! env (tests/harness: its own containerd and the real kubelet), the node phases and
//! kubelet-start bring the static Pods up under the real kubelet, `kubeforge init phase
//! upload-config`, `bootstrap-token`, `addon`, `mark-control-plane` and `show-join-command` run
//! against it, and everything is checked through the API (kube-rs) and the real kubeadm in the
//! node, never by reading kubeforge's own output back. A second test runs one whole `kubeforge
//! init` and checks what a user checks afterwards. Needs root and the testenv binaries: a
//! missing one fails the test with the command that builds them.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret, Service, ServiceAccount, Taint};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};

mod common;
use common::{RealCluster, poll_until};

const TOKEN_ID: &str = "kfe2e0";
const TOKEN_SECRET: &str = "0123456789abcdef";
/// The node name of the tests without a cluster (a cluster's node is named by the test env).
const NODE_NAME: &str = "kf-e2e-node";
const DEFAULT_NODE_TOKEN: &str = "system:bootstrappers:kubeadm:default-node-token";

/// The two cluster tests of this file take turns: each brings up a whole control plane.
static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn kubeadm_config() -> String {
    kubeadm_config_for(NODE_NAME, Some("127.0.0.1"))
}

/// The test's configuration for node `node`, advertising `advertise` (None: detected, as
/// kubeadm detects it).
fn kubeadm_config_for(node: &str, advertise: Option<&str>) -> String {
    let advertise = advertise
        .map(|address| format!("  advertiseAddress: {address}\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: {TOKEN_ID}.{TOKEN_SECRET}
  ttl: 2h0m0s
localAPIEndpoint:
{advertise}  bindPort: 6443
nodeRegistration:
  name: {node}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
clusterName: kubeforge-e2e
networking:
  serviceSubnet: 10.96.0.0/16
  podSubnet: 10.244.0.0/16
"
    )
}

/// `kubeforge --root ROOT init phase ARGS --config CONFIG`, which must succeed.
fn kubeforge(root: &Path, config: &Path, phase: &[&str]) -> Result<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_kubeforge"))
        .arg("--root")
        .arg(root)
        .args(["init", "phase"])
        .args(phase)
        .arg("--config")
        .arg(config)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    ensure!(
        output.status.success(),
        "kubeforge init phase {}: {text}",
        phase.join(" ")
    );
    Ok(text)
}

/// A client config for the node's API server trusting the cluster CA, without credentials.
fn anonymous_config(cp: &RealCluster) -> Result<Config> {
    let ca = cp.node.read("/etc/kubernetes/pki/ca.crt")?;
    let mut config = Config::new(cp.server().parse()?);
    config.root_cert = Some(vec![common::certificate_der(&ca, "ca.crt")]);
    Ok(config)
}

/// A client that authenticates with the bootstrap token only.
fn token_client(cp: &RealCluster) -> Result<Client> {
    let mut config = anonymous_config(cp)?;
    config.auth_info.token = Some(format!("{TOKEN_ID}.{TOKEN_SECRET}").into());
    Ok(Client::try_from(config)?)
}

async fn whoami(client: Client) -> Result<(String, Vec<String>), kube::Error> {
    let review = Api::<SelfSubjectReview>::all(client)
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await?;
    let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
    Ok((
        user.username.unwrap_or_default(),
        user.groups.unwrap_or_default(),
    ))
}

fn names_and_rules(rules: &[k8s_openapi::api::rbac::v1::PolicyRule]) -> Vec<String> {
    rules
        .iter()
        .map(|r| {
            format!(
                "{:?} {:?} {:?} {:?}",
                r.verbs,
                r.api_groups.clone().unwrap_or_default(),
                r.resources.clone().unwrap_or_default(),
                r.resource_names.clone().unwrap_or_default()
            )
        })
        .collect()
}

fn subjects(binding_subjects: Option<&Vec<k8s_openapi::api::rbac::v1::Subject>>) -> Vec<String> {
    binding_subjects
        .into_iter()
        .flatten()
        .map(|s| format!("{} {}", s.kind, s.name))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn api_phases_against_the_real_control_plane() -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cp = RealCluster::create("api-phases", 0)?;
    let address = cp.node.address.to_string();
    let config = cp.write_config(
        "kubeadm.yaml",
        &kubeadm_config_for(&cp.node.name, Some(&address)),
    )?;
    cp.boot(&config)?;
    cp.checked(check_api_phases(&cp, &config)).await
}

async fn check_api_phases(cp: &RealCluster, config: &Path) -> Result<()> {
    check_dry_run(cp, config).await?;
    cp.phase(config, &["upload-config", "all"])?;
    let out = cp.phase(config, &["bootstrap-token"])?.all();
    let addons = cp.phase(config, &["addon", "all"])?.all();
    ensure!(
        addons.contains("[addons] Applied essential addon: CoreDNS"),
        "{addons}"
    );
    ensure!(
        out.contains(&format!(
            "[bootstrap-token] Using token: {TOKEN_ID}.{TOKEN_SECRET}"
        )),
        "{out}"
    );

    let admin = cp.client("admin.conf").await?;
    let system = |c: &Client| Api::<ConfigMap>::namespaced(c.clone(), "kube-system");

    // upload-config
    let kubeadm_config = system(&admin).get("kubeadm-config").await?;
    let cluster = kubeadm_config.data.clone().unwrap_or_default()["ClusterConfiguration"].clone();
    ensure!(
        cluster.contains("kind: ClusterConfiguration\n"),
        "{cluster}"
    );
    ensure!(
        cluster.contains("clusterName: kubeforge-e2e\n"),
        "{cluster}"
    );
    let kubelet_config = system(&admin).get("kubelet-config").await?;
    let kubelet = kubelet_config.data.clone().unwrap_or_default()["kubelet"].clone();
    ensure!(kubelet.contains("clusterDNS:\n- 10.96.0.10\n"), "{kubelet}");
    // The config file's own KubeletConfiguration (the test env's settings) is laid over
    // kubeadm's defaults, and, being the user's, is not signed (kubeadm signs only the
    // configuration it generated, so that an upgrade may regenerate it).
    ensure!(
        kubelet.contains("cgroupDriver: cgroupfs\n") && kubelet.contains("failCgroupV1: false\n"),
        "{kubelet}"
    );
    let annotations = kubelet_config
        .metadata
        .annotations
        .clone()
        .unwrap_or_default();
    ensure!(
        !annotations.contains_key("kubeadm.kubernetes.io/component-config.hash"),
        "a user-supplied KubeletConfiguration is signed: {annotations:?}"
    );
    // The oracle: the real kubeadm's upload-config with the same file, in the node, finds
    // nothing to change in either ConfigMap.
    let uploaded = [kubeadm_config, kubelet_config];
    cp.kubeadm(&[
        "init",
        "phase",
        "upload-config",
        "all",
        "--config",
        config.to_str().unwrap(),
    ])?;
    for ours in uploaded {
        let name = ours.metadata.name.clone().unwrap_or_default();
        let theirs = system(&admin).get(&name).await?;
        ensure!(
            (
                &ours.data,
                &ours.metadata.annotations,
                &ours.metadata.labels
            ) == (
                &theirs.data,
                &theirs.metadata.annotations,
                &theirs.metadata.labels
            ),
            "kubeadm's upload-config changed {name}:\nkubeforge's: {:#?}\nkubeadm's: {:#?}",
            ours.data,
            theirs.data
        );
    }
    for (name, config_map) in [
        ("kubeadm:nodes-kubeadm-config", "kubeadm-config"),
        ("kubeadm:kubelet-config", "kubelet-config"),
    ] {
        let role = Api::<Role>::namespaced(admin.clone(), "kube-system")
            .get(name)
            .await?;
        assert_eq!(
            names_and_rules(&role.rules.unwrap_or_default()),
            [format!(r#"["get"] [""] ["configmaps"] ["{config_map}"]"#)]
        );
        let binding = Api::<RoleBinding>::namespaced(admin.clone(), "kube-system")
            .get(name)
            .await?;
        assert_eq!(binding.role_ref.name, name);
        let mut groups = subjects(binding.subjects.as_ref());
        groups.sort();
        assert_eq!(
            groups,
            [
                format!("Group {DEFAULT_NODE_TOKEN}"),
                "Group system:nodes".into()
            ]
        );
    }

    // bootstrap-token: the Secret, the RBAC, cluster-info
    let secret = Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .get(&format!("bootstrap-token-{TOKEN_ID}"))
        .await?;
    assert_eq!(
        secret.type_.as_deref(),
        Some("bootstrap.kubernetes.io/token")
    );
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| String::from_utf8(data[key].0.clone()).unwrap();
    assert_eq!(text("token-id"), TOKEN_ID);
    assert_eq!(text("token-secret"), TOKEN_SECRET);
    assert_eq!(text("usage-bootstrap-authentication"), "true");
    assert_eq!(text("usage-bootstrap-signing"), "true");
    assert_eq!(text("auth-extra-groups"), DEFAULT_NODE_TOKEN);
    let crbs = Api::<ClusterRoleBinding>::all(admin.clone());
    for (name, role, subject) in [
        (
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            DEFAULT_NODE_TOKEN,
        ),
        ("kubeadm:get-nodes", "kubeadm:get-nodes", DEFAULT_NODE_TOKEN),
        (
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            DEFAULT_NODE_TOKEN,
        ),
        (
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            "system:nodes",
        ),
        (
            "kubeadm:cluster-admins",
            "cluster-admin",
            "kubeadm:cluster-admins",
        ),
    ] {
        let binding = crbs.get(name).await.with_context(|| name.to_string())?;
        assert_eq!(binding.role_ref.name, role, "{name}");
        assert_eq!(
            subjects(binding.subjects.as_ref()),
            [format!("Group {subject}")],
            "{name}"
        );
    }
    let get_nodes = Api::<ClusterRole>::all(admin.clone())
        .get("kubeadm:get-nodes")
        .await?;
    assert_eq!(
        names_and_rules(&get_nodes.rules.unwrap_or_default()),
        [r#"["get"] [""] ["nodes"] []"#]
    );
    let public = Api::<ConfigMap>::namespaced(admin.clone(), "kube-public");
    let role = Api::<Role>::namespaced(admin.clone(), "kube-public")
        .get("kubeadm:bootstrap-signer-clusterinfo")
        .await?;
    assert_eq!(
        names_and_rules(&role.rules.unwrap_or_default()),
        [r#"["get"] [""] ["configmaps"] ["cluster-info"]"#]
    );
    let binding = Api::<RoleBinding>::namespaced(admin.clone(), "kube-public")
        .get("kubeadm:bootstrap-signer-clusterinfo")
        .await?;
    assert_eq!(
        subjects(binding.subjects.as_ref()),
        ["User system:anonymous"]
    );

    // kube-controller-manager's bootstrapsigner signs cluster-info with our token.
    let key = format!("jws-kubeconfig-{TOKEN_ID}");
    let (kubeconfig, jws) = poll_until(
        "the bootstrapsigner's signature",
        Duration::from_secs(90),
        || {
            let public = public.clone();
            let key = key.clone();
            async move {
                let data = public.get("cluster-info").await?.data.unwrap_or_default();
                Ok(data
                    .get(&key)
                    .map(|jws| (data["kubeconfig"].clone(), jws.clone())))
            }
        },
    )
    .await?;
    ensure!(
        kubeconfig.contains(&format!("server: {}\n", cp.server())),
        "{kubeconfig}"
    );
    let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{TOKEN_ID}"}}"#));
    let signing_input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(&kubeconfig));
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, TOKEN_SECRET.as_bytes()),
        signing_input.as_bytes(),
    );
    assert_eq!(
        jws,
        format!("{header}..{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    );

    check_addons(&admin, &cp.server()).await?;
    check_mark_control_plane(cp, config, &admin).await?;

    // The real kubeadm in the node lists our token.
    let listed = cp.kubeadm(&["token", "list"])?.stdout;
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("{TOKEN_ID}.{TOKEN_SECRET}")))
        .with_context(|| format!("kubeadm token list does not show our token:\n{listed}"))?;
    ensure!(
        line.contains("authentication,signing") && line.contains(DEFAULT_NODE_TOKEN),
        "kubeadm token list: {line}"
    );

    check_join_command(cp, config)?;

    // The token authenticates as system:bootstrap:<id> with its groups ...
    let (user, groups) = whoami(token_client(cp)?).await?;
    assert_eq!(user, format!("system:bootstrap:{TOKEN_ID}"));
    for group in [
        "system:bootstrappers",
        DEFAULT_NODE_TOKEN,
        "system:authenticated",
    ] {
        ensure!(
            groups.iter().any(|g| g == group),
            "groups {groups:?} lack {group}"
        );
    }
    check_node_csr(cp).await?;
    // ... and no longer once its Secret is gone.
    Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .delete(
            &format!("bootstrap-token-{TOKEN_ID}"),
            &DeleteParams::default(),
        )
        .await?;
    poll_until(
        "the deleted token to stop authenticating",
        Duration::from_secs(30),
        || async {
            match whoami(token_client(cp)?).await {
                Err(kube::Error::Api(status)) if status.code == 401 => Ok(Some(())),
                _ => Ok(None),
            }
        },
    )
    .await?;
    Ok(())
}

/// CoreDNS and kube-proxy with kubeadm's names, labels, addresses and rules.
/// The addons' objects; kube-proxy's kubeconfig points at `server`.
async fn check_addons(admin: &Client, server: &str) -> Result<()> {
    let service = Api::<Service>::namespaced(admin.clone(), "kube-system")
        .get("kube-dns")
        .await?;
    let spec = service.spec.unwrap_or_default();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.10"));
    let ports: Vec<_> = spec
        .ports
        .unwrap_or_default()
        .iter()
        .map(|p| {
            format!(
                "{}/{}/{}",
                p.name.clone().unwrap_or_default(),
                p.port,
                p.protocol.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(ports, ["dns/53/UDP", "dns-tcp/53/TCP", "metrics/9153/TCP"]);
    let labels = service.metadata.labels.unwrap_or_default();
    assert_eq!(labels["kubernetes.io/name"], "CoreDNS");
    let deployment = Api::<Deployment>::namespaced(admin.clone(), "kube-system")
        .get("coredns")
        .await?;
    let spec = deployment.spec.unwrap_or_default();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap_or_default();
    assert_eq!(pod.service_account_name.as_deref(), Some("coredns"));
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("system-cluster-critical")
    );
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.k8s.io/coredns/coredns:v1.14.6")
    );
    let corefile = Api::<ConfigMap>::namespaced(admin.clone(), "kube-system")
        .get("coredns")
        .await?
        .data
        .unwrap_or_default()["Corefile"]
        .clone();
    ensure!(
        corefile.contains("kubernetes cluster.local in-addr.arpa ip6.arpa {"),
        "{corefile}"
    );
    let coredns_role = Api::<ClusterRole>::all(admin.clone())
        .get("system:coredns")
        .await?;
    assert_eq!(
        names_and_rules(&coredns_role.rules.unwrap_or_default()),
        [
            r#"["list", "watch"] [""] ["endpoints", "services", "pods", "namespaces"] []"#,
            r#"["list", "watch"] ["discovery.k8s.io"] ["endpointslices"] []"#,
        ]
    );
    let crbs = Api::<ClusterRoleBinding>::all(admin.clone());
    for (name, role, subject) in [
        ("system:coredns", "system:coredns", "ServiceAccount coredns"),
        (
            "kubeadm:node-proxier",
            "system:node-proxier",
            "ServiceAccount kube-proxy",
        ),
    ] {
        let binding = crbs.get(name).await?;
        assert_eq!(binding.role_ref.name, role);
        assert_eq!(subjects(binding.subjects.as_ref()), [subject]);
    }
    for name in ["coredns", "kube-proxy"] {
        Api::<ServiceAccount>::namespaced(admin.clone(), "kube-system")
            .get(name)
            .await
            .with_context(|| format!("ServiceAccount {name}"))?;
    }
    let daemon_set = Api::<DaemonSet>::namespaced(admin.clone(), "kube-system")
        .get("kube-proxy")
        .await?;
    let pod = daemon_set
        .spec
        .unwrap_or_default()
        .template
        .spec
        .unwrap_or_default();
    assert_eq!(pod.host_network, Some(true));
    assert_eq!(
        pod.containers[0].image.as_deref(),
        Some("registry.k8s.io/kube-proxy:v1.37.2")
    );
    let proxy = Api::<ConfigMap>::namespaced(admin.clone(), "kube-system")
        .get("kube-proxy")
        .await?;
    let data = proxy.data.unwrap_or_default();
    ensure!(
        data["kubeconfig.conf"].contains(&format!("server: {server}\n")),
        "kube-proxy's kubeconfig points at {server}: {}",
        data["kubeconfig.conf"]
    );
    ensure!(data["config.conf"].contains("kind: KubeProxyConfiguration"));
    let role = Api::<Role>::namespaced(admin.clone(), "kube-system")
        .get("kube-proxy")
        .await?;
    assert_eq!(
        names_and_rules(&role.rules.unwrap_or_default()),
        [r#"["get"] [""] ["configmaps"] ["kube-proxy"]"#]
    );
    let binding = Api::<RoleBinding>::namespaced(admin.clone(), "kube-system")
        .get("kube-proxy")
        .await?;
    assert_eq!(
        subjects(binding.subjects.as_ref()),
        [format!("Group {DEFAULT_NODE_TOKEN}")]
    );
    Ok(())
}

/// The real kubelet registers its Node with kubelet.conf's identity (which NodeRestriction must
/// accept); mark-control-plane labels and taints it, keeping the node's own taint (one no
/// controller manages, put there by the operator) next to kubeadm's.
async fn check_mark_control_plane(cp: &RealCluster, config: &Path, admin: &Client) -> Result<()> {
    let name = cp.node.name.as_str();
    let nodes = Api::<Node>::all(admin.clone());
    let node = poll_until(
        "the kubelet to register its Node",
        Duration::from_secs(90),
        || async { Ok(nodes.get_opt(name).await?) },
    )
    .await?;
    ensure!(
        node.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref() == Some("kubelet")),
        "the Node {name} was registered by the kubelet"
    );
    // A strategic merge of taints (merged by key) keeps the node lifecycle controller's.
    let own_taint = serde_json::json!({"spec": {"taints": [
        {"key": "example.com/dedicated", "value": "e2e", "effect": "PreferNoSchedule"}
    ]}});
    nodes
        .patch(name, &PatchParams::default(), &Patch::Strategic(own_taint))
        .await
        .context("tainting the Node as its operator")?;
    cp.phase(config, &["mark-control-plane"])?;
    let node = nodes.get(name).await?;
    let labels = node.metadata.labels.unwrap_or_default();
    for label in [
        "node-role.kubernetes.io/control-plane",
        "node.kubernetes.io/exclude-from-external-load-balancers",
    ] {
        assert_eq!(labels.get(label).map(String::as_str), Some(""), "{label}");
    }
    let mut taints: Vec<String> = node
        .spec
        .unwrap_or_default()
        .taints
        .unwrap_or_default()
        .iter()
        // The node lifecycle controller adds and removes its own (not-ready, unreachable).
        .filter(|t: &&Taint| !t.key.starts_with("node.kubernetes.io/"))
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    taints.sort();
    assert_eq!(
        taints,
        [
            "example.com/dedicated:PreferNoSchedule",
            "node-role.kubernetes.io/control-plane:NoSchedule",
        ]
    );
    Ok(())
}

/// show-join-command prints the worker join command as the real kubeadm does: `kubeadm token
/// create --print-join-command` prints the same template for its own token with the line
/// continuations (`\\`, newline, tab) removed.
fn check_join_command(cp: &RealCluster, config: &Path) -> Result<()> {
    let ours = cp.phase(config, &["show-join-command"])?.stdout;
    let theirs = cp
        .kubeadm(&["token", "create", "--print-join-command"])?
        .stdout;
    let their_token = theirs
        .split_whitespace()
        .skip_while(|w| *w != "--token")
        .nth(1)
        .context("no token in kubeadm's join command")?;
    let expected = theirs.replace(their_token, &format!("{TOKEN_ID}.{TOKEN_SECRET}"));
    let worker = ours
        .split("on each as root:\n\n")
        .nth(1)
        .with_context(|| format!("no worker join command in:\n{ours}"))?;
    let worker = worker.replace("\\\n", "").replace('\t', "");
    ensure!(
        worker.trim_end_matches('\n') == expected.trim_end_matches('\n'),
        "ours:\n{worker}\nkubeadm's:\n{theirs}"
    );
    ensure!(
        ours.starts_with("\nYour Kubernetes control-plane has initialized successfully!\n"),
        "{ours}"
    );
    Ok(())
}

/// A dry run against the live cluster plans every object as YAML (Secret values withheld) and
/// sends nothing, not even the kubeadm:cluster-admins binding a real run creates first.
async fn check_dry_run(cp: &RealCluster, config: &Path) -> Result<()> {
    let plan = cp.phase(config, &["bootstrap-token", "--dry-run"])?.all();
    for line in [
        format!("[dryrun] [bootstrap-token] Would perform action APPLY on Secret kube-system/bootstrap-token-{TOKEN_ID}\n"),
        "[dryrun] [bootstrap-token] Would perform action APPLY on ClusterRoleBinding kubeadm:kubelet-bootstrap\n".into(),
        "[dryrun] [bootstrap-token] Would perform action APPLY on ConfigMap kube-public/cluster-info\n".into(),
        "      token-secret: (withheld)\n".into(),
        "[dryrun] [bootstrap-token] Would perform action APPLY on ClusterRoleBinding kubeadm:cluster-admins\n".into(),
    ] {
        ensure!(plan.contains(&line), "{line:?} not in the plan:\n{plan}");
    }
    let plan = cp.phase(config, &["addon", "all", "--dry-run"])?.all();
    ensure!(
        plan.contains(
            "[dryrun] [addon/coredns] Would perform action APPLY on Service kube-system/kube-dns\n"
        ),
        "{plan}"
    );
    // admin.conf may read nothing before the first real run binds kubeadm:cluster-admins.
    let admin = cp.client("super-admin.conf").await?;
    ensure!(
        Api::<Secret>::namespaced(admin.clone(), "kube-system")
            .get_opt(&format!("bootstrap-token-{TOKEN_ID}"))
            .await?
            .is_none(),
        "a dry run created the token Secret"
    );
    ensure!(
        Api::<Service>::namespaced(admin.clone(), "kube-system")
            .get_opt("kube-dns")
            .await?
            .is_none(),
        "a dry run created the kube-dns Service"
    );
    ensure!(
        Api::<ClusterRoleBinding>::all(admin)
            .get_opt("kubeadm:cluster-admins")
            .await?
            .is_none(),
        "a dry run created the kubeadm:cluster-admins binding"
    );
    Ok(())
}

/// As the bootstrap token, a node client CSR for system:node:<name> is auto-approved (our
/// kubeadm:node-autoapprove-bootstrap binding) and signed by kube-controller-manager, and the
/// signed certificate authenticates as that node.
async fn check_node_csr(cp: &RealCluster) -> Result<()> {
    let node_name = cp.node.name.as_str();
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{node_name}"),
    );
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let request = params.serialize_request(&key)?.pem()?;
    let csr: CertificateSigningRequest = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "kf-e2e-node-client"},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(request),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    }))?;
    let csrs = Api::<CertificateSigningRequest>::all(token_client(cp)?);
    csrs.create(&PostParams::default(), &csr)
        .await
        .context("creating the node CSR as the bootstrap token")?;
    let certificate = poll_until(
        "the node CSR to be approved and signed",
        Duration::from_secs(60),
        || {
            let csrs = csrs.clone();
            async move {
                let csr = csrs.get("kf-e2e-node-client").await?;
                Ok(csr.status.and_then(|s| s.certificate).map(|c| c.0))
            }
        },
    )
    .await?;
    let mut config = anonymous_config(cp)?;
    config.auth_info.client_certificate_data =
        Some(base64::engine::general_purpose::STANDARD.encode(&certificate));
    config.auth_info.client_key_data = Some(
        base64::engine::general_purpose::STANDARD
            .encode(key.serialize_pem())
            .into(),
    );
    let (user, groups) = whoami(Client::try_from(config)?).await?;
    assert_eq!(user, format!("system:node:{node_name}"));
    ensure!(groups.iter().any(|g| g == "system:nodes"), "{groups:?}");
    Ok(())
}

/// Without a cluster to read, a dry run of the API phases still plans every object: reads find
/// nothing, so cluster-info is planned too.
#[test]
fn dry_run_without_a_cluster_plans_every_object() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let config = dir.path().join("kubeadm.yaml");
    // A port nothing listens on: the cluster is unreachable.
    std::fs::write(
        &config,
        kubeadm_config().replace("bindPort: 6443", "bindPort: 1"),
    )?;
    kubeforge(&root, &config, &["certs", "all"])?;
    kubeforge(&root, &config, &["kubeconfig", "all"])?;
    let plan = kubeforge(&root, &config, &["bootstrap-token", "--dry-run"])?;
    for line in [
        format!("Would perform action APPLY on Secret kube-system/bootstrap-token-{TOKEN_ID}\n"),
        "Would perform action APPLY on ConfigMap kube-public/cluster-info\n".into(),
        "Would perform action APPLY on RoleBinding kube-public/kubeadm:bootstrap-signer-clusterinfo\n".into(),
        "        server: https://127.0.0.1:1\n".into(),
    ] {
        ensure!(plan.contains(&line), "{line:?} not in the plan:\n{plan}");
    }
    let plan = kubeforge(&root, &config, &["upload-config", "all", "--dry-run"])?;
    ensure!(
        plan.contains("Would perform action APPLY on ConfigMap kube-system/kubelet-config\n"),
        "{plan}"
    );
    Ok(())
}

/// A whole `init --dry-run` on an empty root plans the files and then the API objects from the
/// planned admin.conf, honours `--skip-phases addon/coredns`, and writes nothing.
#[test]
fn whole_init_dry_run_plans_the_api_phases_and_honours_skipped_addons() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let config = dir.path().join("kubeadm.yaml");
    std::fs::write(
        &config,
        kubeadm_config().replace("bindPort: 6443", "bindPort: 1"),
    )?;
    let output = Command::new(env!("CARGO_BIN_EXE_kubeforge"))
        .arg("--root")
        .arg(&root)
        .args(["init", "--dry-run", "--config"])
        .arg(&config)
        .arg("--skip-phases=addon/coredns")
        .output()?;
    let plan = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "{plan}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in [
        "Would perform action APPLY on ConfigMap kube-system/kubeadm-config\n",
        "Would perform action APPLY on ConfigMap kube-public/cluster-info\n",
        "Would perform action APPLY on DaemonSet kube-system/kube-proxy\n",
        "[dryrun] [kubelet-start] Would write file",
        "[dryrun] [kubelet-start] Would restart service kubelet\n",
        "Would perform action APPLY on Node kf-e2e-node\n",
    ] {
        ensure!(plan.contains(line), "{line:?} not in the plan:\n{plan}");
    }
    // As kubeadm's manageSkippedAddons: the skipped DNS addon is recorded as disabled in the
    // uploaded ClusterConfiguration.
    let kubeadm_config = plan
        .split("Would perform action APPLY on ConfigMap kube-system/kubeadm-config\n")
        .nth(1)
        .and_then(|rest| rest.split("[dryrun]").next())
        .unwrap_or_default();
    ensure!(
        kubeadm_config.contains("dns:") && kubeadm_config.contains("disabled: true"),
        "the uploaded ClusterConfiguration records dns.disabled:\n{kubeadm_config}"
    );
    ensure!(
        !plan.contains("coredns"),
        "addon/coredns was skipped:\n{plan}"
    );
    ensure!(!root.exists(), "a dry run wrote {}", root.display());
    Ok(())
}

/// One whole `kubeforge init --upload-certs` on a real node, no phase skipped: kubelet-start
/// writes the kubelet's files and restarts the real kubelet through `systemctl`,
/// wait-control-plane polls its healthz and the components' health endpoints, the kubelet
/// registers the Node with kubelet.conf's credentials (which NodeRestriction must accept) while
/// mark-control-plane waits for it, and kubelet-finalize points kubelet.conf at the certificate
/// the kubelet rotated to. Then what a user checks: the Node Ready and every kube-system Pod
/// Running and Ready (CoreDNS too), the kubelet's client certificate its own (a CSR it made,
/// approved and signed), and the real kubeadm reading the cluster's kubeadm-config.
#[tokio::test(flavor = "multi_thread")]
async fn one_init_brings_up_a_control_plane_on_a_real_node() -> Result<()> {
    let _turn = ONE_CLUSTER_AT_A_TIME.lock().await;
    let cp = RealCluster::create("api-phases-init", 0)?;
    // No advertiseAddress: kubeforge picks the default-route interface's address as kubeadm
    // does.
    let config = cp.write_config("kubeadm.yaml", &kubeadm_config_for(&cp.node.name, None))?;
    let init = tokio::task::block_in_place(|| {
        cp.kubeforge_ok(&[
            "init",
            "--upload-certs",
            "--config",
            config.to_str().unwrap(),
        ])
    })?;
    let init_returned = k8s_openapi::jiff::Timestamp::now();
    let text = init.all();
    for line in [
        "[kubelet-start] Starting the kubelet",
        "[kubelet-check] The kubelet is healthy after",
        "[control-plane-check] kube-apiserver is healthy after",
        "[control-plane-check] kube-controller-manager is healthy after",
        "[control-plane-check] kube-scheduler is healthy after",
        "[control-plane-check] kube-apiserver is ready after",
        "[upload-certs] Using certificate key:",
        "[kubelet-finalize] Updating \"/etc/kubernetes/kubelet.conf\" to point to a rotatable kubelet client certificate and key",
        "Your Kubernetes control-plane has initialized successfully!",
    ] {
        ensure!(text.contains(line), "init printed no {line:?}:\n{text}");
    }
    ensure!(
        !text.contains("not available in this kubeforge build")
            || text.lines().filter(|l| l.contains("not available")).count() == 1
                && text.contains("[preflight] not available"),
        "only preflight is missing from this build:\n{text}"
    );
    cp.checked(check_whole_init(&cp, init_returned)).await
}

/// The kubelet's client certificate, as kubelet.conf names it.
const KUBELET_CLIENT_PEM: &str = "/var/lib/kubelet/pki/kubelet-client-current.pem";

async fn check_whole_init(
    cp: &RealCluster,
    init_returned: k8s_openapi::jiff::Timestamp,
) -> Result<()> {
    // The addons' Pods first: right after init they may not exist yet, and the test env's
    // wait_ready looks only at the Pods there are.
    let admin = cp.client("admin.conf").await?;
    let deployments = Api::<Deployment>::namespaced(admin.clone(), "kube-system");
    let daemon_sets = Api::<DaemonSet>::namespaced(admin.clone(), "kube-system");
    poll_until(
        "CoreDNS's two replicas and kube-proxy to be Ready",
        Duration::from_secs(240),
        || async {
            let coredns = deployments
                .get("coredns")
                .await?
                .status
                .and_then(|s| s.ready_replicas);
            let proxy = daemon_sets.get("kube-proxy").await?.status;
            Ok((coredns == Some(2)
                && proxy.is_some_and(|s| s.desired_number_scheduled == 1 && s.number_ready == 1))
            .then_some(()))
        },
    )
    .await?;
    let took = tokio::task::block_in_place(|| cp.cluster.wait_ready(Duration::from_secs(120)))?;
    eprintln!(
        "CoreDNS and kube-proxy Ready; the Node and every kube-system Pod Ready {took:?} later"
    );

    let kubelet = cp.node.path("/var/lib/kubelet");
    let flags = std::fs::read_to_string(kubelet.join("kubeadm-flags.env"))?;
    ensure!(flags.starts_with("KUBELET_KUBEADM_ARGS=\""), "{flags}");
    let kubelet_config: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(kubelet.join("config.yaml"))?)?;
    ensure!(
        kubelet_config["clusterDNS"] == serde_json::json!(["10.96.0.10"])
            && kubelet_config["staticPodPath"] == "/etc/kubernetes/manifests",
        "{kubelet_config}"
    );
    let instance = std::fs::read_to_string(kubelet.join("instance-config.yaml"))?;
    ensure!(instance.contains("containerRuntimeEndpoint:"), "{instance}");
    let kubelet_conf: serde_json::Value =
        serde_saphyr::from_str(&cp.node.read("/etc/kubernetes/kubelet.conf")?)?;
    let user = &kubelet_conf["users"][0]["user"];
    ensure!(
        user["client-certificate"] == KUBELET_CLIENT_PEM
            && user["client-key"] == KUBELET_CLIENT_PEM,
        "kubelet.conf points at the rotatable certificate: {kubelet_conf}"
    );

    let admin_conf: serde_json::Value =
        serde_saphyr::from_str(&cp.node.read("/etc/kubernetes/admin.conf")?)?;
    let server = admin_conf["clusters"][0]["cluster"]["server"]
        .as_str()
        .context("admin.conf names its server")?;
    ensure!(
        server == cp.server(),
        "admin.conf's server {server} is the detected address"
    );
    check_addons(&admin, server).await?;
    let name = cp.node.name.as_str();
    let node = Api::<Node>::all(admin.clone()).get(name).await?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels.contains_key("node-role.kubernetes.io/control-plane"),
        "{labels:?}"
    );
    // The kubelet registered it as kubelet.conf's identity, through NodeRestriction.
    ensure!(
        node.metadata
            .managed_fields
            .clone()
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref() == Some("kubelet")),
        "the Node was registered by the kubelet"
    );
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready");
    ensure!(
        ready.as_ref().is_some_and(|c| c.status == "True"),
        "the Node is Ready: {ready:?}"
    );
    Api::<ConfigMap>::namespaced(admin.clone(), "kube-public")
        .get("cluster-info")
        .await
        .context("cluster-info")?;
    Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .get("kubeadm-certs")
        .await
        .context("kubeadm-certs")?;
    check_kubelet_client_certificate(cp, &admin, init_returned).await?;

    // The real kubeadm in the node reads the cluster's kubeadm-config (no --config: it fetches
    // it with admin.conf).
    let text = cp.kubeadm(&["certs", "check-expiration"])?.all();
    ensure!(
        text.contains("Reading configuration from the \"kubeadm-config\" ConfigMap")
            && !text.contains("Error reading configuration")
            && text.contains("apiserver "),
        "kubeadm reads our kubeadm-config:\n{text}"
    );
    Ok(())
}

/// kubelet.conf's pem holds a client certificate of system:node:<name> from the cluster CA with
/// its key; the kubelet authenticates with it after kubelet-finalize restarted it (it renews its
/// Lease after init returned); and the kubelet rotates its certificate itself: its own CSR (made
/// as system:node:<name> for kubernetes.io/kube-apiserver-client-kubelet) is approved through
/// the bootstrap-token phase's rotation binding and signed by kube-controller-manager.
///
/// Whether the pem holds that CSR's certificate or still the copy of kubelet.conf's first
/// certificate the kubelet stored at start is timing, the same with the real kubeadm (`kubeadm
/// init` on a node of this test env keeps the copy): the CSR is often approved after
/// kubelet-finalize restarted the kubelet, and the new kubelet rotates only late in the stored
/// certificate's life. So either is accepted, and the test says which it saw.
async fn check_kubelet_client_certificate(
    cp: &RealCluster,
    admin: &Client,
    init_returned: k8s_openapi::jiff::Timestamp,
) -> Result<()> {
    let name = cp.node.name.clone();
    let user = format!("system:node:{name}");
    let ca_pem = cp.node.read("/etc/kubernetes/pki/ca.crt")?;
    let ca_der = common::certificate_der(&ca_pem, "ca.crt");
    let ca = common::parse_certificate(&ca_der, "ca.crt");
    let check_client = |der: &[u8], what: &str| {
        let cert = common::parse_certificate(der, what);
        assert_eq!(common::common_name(&cert), user, "{what}: CN");
        assert_eq!(common::organizations(&cert), ["system:nodes"], "{what}: O");
        cert.verify_signature(Some(ca.public_key()))
            .unwrap_or_else(|e| panic!("{what} is not signed by the cluster CA: {e}"));
    };

    // A symlink to an absolute path: read inside the node, which resolves it.
    let pem = cp.node.run(&["cat", KUBELET_CLIENT_PEM])?;
    let blocks = common::pem_blocks(&pem);
    let der = blocks
        .iter()
        .find(|(label, _)| label == "CERTIFICATE")
        .map(|(_, der)| der.clone())
        .with_context(|| format!("no certificate in {KUBELET_CLIENT_PEM}"))?;
    check_client(&der, KUBELET_CLIENT_PEM);
    let cert = common::parse_certificate(&der, KUBELET_CLIENT_PEM);
    let key: String = pem
        .split_inclusive('\n')
        .skip_while(|l| !(l.starts_with("-----BEGIN") && l.contains("PRIVATE KEY")))
        .collect();
    common::assert_key_matches(
        &cert,
        &key,
        common::key_algorithm(&cert),
        &format!("the key in {KUBELET_CLIENT_PEM}"),
    );

    let leases = Api::<k8s_openapi::api::coordination::v1::Lease>::namespaced(
        admin.clone(),
        "kube-node-lease",
    );
    poll_until(
        "the kubelet to renew its Lease after init",
        Duration::from_secs(60),
        || async {
            let renewed = leases
                .get_opt(&name)
                .await?
                .and_then(|l| l.spec)
                .and_then(|s| s.renew_time)
                .is_some_and(|t| t.0 > init_returned);
            Ok(renewed.then_some(()))
        },
    )
    .await?;

    let csrs = Api::<CertificateSigningRequest>::all(admin.clone());
    let (csr, issued) = poll_until(
        "the kubelet's own CSR to be approved and signed",
        Duration::from_secs(120),
        || async {
            for csr in csrs.list(&ListParams::default()).await?.items {
                let status = csr.status.clone().unwrap_or_default();
                let approved = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Approved" && c.status == "True");
                let issued = status
                    .certificate
                    .map(|pem| common::pem_blocks(&String::from_utf8_lossy(&pem.0)))
                    .unwrap_or_default();
                if csr.spec.username.as_deref() == Some(user.as_str())
                    && csr.spec.signer_name == "kubernetes.io/kube-apiserver-client-kubelet"
                    && approved
                    && let Some((_, issued)) = issued.into_iter().next()
                {
                    return Ok(Some((csr, issued)));
                }
            }
            Ok(None)
        },
    )
    .await?;
    let csr_name = csr.metadata.name.unwrap_or_default();
    check_client(&issued, &format!("the certificate of CSR {csr_name}"));
    eprintln!(
        "{KUBELET_CLIENT_PEM} holds {}",
        if issued == der {
            format!("the certificate of the kubelet's CSR {csr_name}")
        } else {
            format!(
                "the certificate kubelet.conf had first (the kubelet's CSR {csr_name} was signed after kubelet-finalize restarted it)"
            )
        }
    );
    Ok(())
}
