//! The API phases against the real control plane: kubeforge writes a node into a temp root, the
//! kubelet stand-in runs it with the real etcd, kube-apiserver and kube-controller-manager
//! (tests/testenv), `kubeforge init phase upload-config` and `bootstrap-token` run against it,
//! and everything is checked through the API (kube-rs) and the real kubeadm, never by reading
//! kubeforge's own output back. Needs the testenv binaries: a missing one fails the test with
//! the command that builds them.

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
use kube::api::{Api, DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kubeforge_testenv::{ControlPlaneLock, StandIn, testenv_bin_dir};

mod common;
use common::{kube_client, poll_until};

const TOKEN_ID: &str = "kfe2e0";
const TOKEN_SECRET: &str = "0123456789abcdef";
const NODE_NAME: &str = "kf-e2e-node";
const DEFAULT_NODE_TOKEN: &str = "system:bootstrappers:kubeadm:default-node-token";

fn kubeadm_config() -> String {
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: {TOKEN_ID}.{TOKEN_SECRET}
  ttl: 2h0m0s
localAPIEndpoint:
  advertiseAddress: 127.0.0.1
  bindPort: 6443
nodeRegistration:
  name: {NODE_NAME}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.35.4
clusterName: kubeforge-e2e
networking:
  serviceSubnet: 10.96.0.0/16
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

async fn admin_client(root: &Path) -> Result<Client> {
    kube_client(root, "admin.conf").await
}

/// A client that authenticates with the bootstrap token only.
fn token_client(root: &Path) -> Result<Client> {
    let ca = std::fs::read_to_string(root.join("etc/kubernetes/pki/ca.crt"))?;
    let body: String = ca.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body)?;
    let mut config = Config::new("https://127.0.0.1:6443".parse()?);
    config.root_cert = Some(vec![der]);
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
    let bin = testenv_bin_dir()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let config = dir.path().join("kubeadm.yaml");
    std::fs::write(&config, kubeadm_config())?;
    for (phase, sub) in common::NODE_PHASES {
        kubeforge(&root, &config, &[phase, sub])?;
    }
    common::against_control_plane(&root, &bin, check_api_phases(&root, &config, &bin)).await
}

async fn check_api_phases(root: &Path, config: &Path, bin: &Path) -> Result<()> {
    check_dry_run(root, config).await?;
    kubeforge(root, config, &["upload-config", "all"])?;
    let out = kubeforge(root, config, &["bootstrap-token"])?;
    let addons = kubeforge(root, config, &["addon", "all"])?;
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

    let admin = admin_client(root).await?;
    let system = |c: &Client| Api::<ConfigMap>::namespaced(c.clone(), "kube-system");

    // upload-config
    let kubeadm_config = system(&admin).get("kubeadm-config").await?;
    let cluster = kubeadm_config.data.unwrap_or_default()["ClusterConfiguration"].clone();
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
    let hash = kubelet_config.metadata.annotations.unwrap_or_default()
        ["kubeadm.kubernetes.io/component-config.hash"]
        .clone();
    ensure!(
        hash == format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(kubelet.as_bytes()))
        ),
        "kubelet-config hash {hash}"
    );
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
        kubeconfig.contains("server: https://127.0.0.1:6443\n"),
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

    check_addons(&admin, "https://127.0.0.1:6443").await?;
    check_mark_control_plane(root, config, &admin).await?;

    // The real kubeadm lists our token.
    let list = Command::new(bin.join("kubeadm"))
        .args(["token", "list", "--kubeconfig"])
        .arg(root.join("etc/kubernetes/admin.conf"))
        .output()?;
    let listed = String::from_utf8_lossy(&list.stdout);
    ensure!(
        list.status.success(),
        "kubeadm token list: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    let line = listed
        .lines()
        .find(|l| l.starts_with(&format!("{TOKEN_ID}.{TOKEN_SECRET}")))
        .with_context(|| format!("kubeadm token list does not show our token:\n{listed}"))?;
    ensure!(
        line.contains("authentication,signing") && line.contains(DEFAULT_NODE_TOKEN),
        "kubeadm token list: {line}"
    );

    check_join_command(root, config, bin)?;

    // The token authenticates as system:bootstrap:<id> with its groups ...
    let (user, groups) = whoami(token_client(root)?).await?;
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
    check_node_csr(root).await?;
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
            match whoami(token_client(root)?).await {
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
        Some("registry.k8s.io/coredns/coredns:v1.13.1")
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
        Some("registry.k8s.io/kube-proxy:v1.35.4")
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

/// mark-control-plane waits for its Node, which the test registers (there is no kubelet) with
/// kubelet.conf's credentials, proving that identity under NodeRestriction; the node's own
/// taint (one no controller manages) is kept next to kubeadm's.
async fn check_mark_control_plane(root: &Path, config: &Path, admin: &Client) -> Result<()> {
    let phase = Command::new(env!("CARGO_BIN_EXE_kubeforge"))
        .arg("--root")
        .arg(root)
        .args(["init", "phase", "mark-control-plane", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let kubelet = Kubeconfig::read_from(root.join("etc/kubernetes/kubelet.conf"))?;
    let kubelet = Client::try_from(
        Config::from_custom_kubeconfig(kubelet, &KubeConfigOptions::default()).await?,
    )?;
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": NODE_NAME},
        "spec": {"taints": [{"key": "example.com/dedicated", "value": "e2e", "effect": "NoExecute"}]},
    }))?;
    Api::<Node>::all(kubelet)
        .create(&PostParams::default(), &node)
        .await
        .context("registering the Node with kubelet.conf")?;
    let output = phase.wait_with_output()?;
    ensure!(
        output.status.success(),
        "mark-control-plane: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let node = Api::<Node>::all(admin.clone()).get(NODE_NAME).await?;
    let labels = node.metadata.labels.unwrap_or_default();
    for label in [
        "node-role.kubernetes.io/control-plane",
        "node.kubernetes.io/exclude-from-external-load-balancers",
    ] {
        assert_eq!(labels.get(label).map(String::as_str), Some(""), "{label}");
    }
    let taints: Vec<String> = node
        .spec
        .unwrap_or_default()
        .taints
        .unwrap_or_default()
        .iter()
        // The node lifecycle controller adds and removes its own (not-ready, unreachable).
        .filter(|t: &&Taint| !t.key.starts_with("node.kubernetes.io/"))
        .map(|t| format!("{}:{}", t.key, t.effect))
        .collect();
    assert_eq!(
        taints,
        [
            "node-role.kubernetes.io/control-plane:NoSchedule",
            "example.com/dedicated:NoExecute"
        ]
    );
    Ok(())
}

/// show-join-command prints the worker join command as the real kubeadm does: `kubeadm token
/// create --print-join-command` prints the same template for its own token with the line
/// continuations (`\\`, newline, tab) removed.
fn check_join_command(root: &Path, config: &Path, bin: &Path) -> Result<()> {
    let ours = kubeforge(root, config, &["show-join-command"])?;
    let created = Command::new(bin.join("kubeadm"))
        .args(["token", "create", "--print-join-command", "--kubeconfig"])
        .arg(root.join("etc/kubernetes/admin.conf"))
        .output()?;
    let theirs = String::from_utf8(created.stdout)?;
    ensure!(
        created.status.success(),
        "kubeadm token create: {}",
        String::from_utf8_lossy(&created.stderr)
    );
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
        ours.starts_with("Your Kubernetes control-plane has initialized successfully!\n"),
        "{ours}"
    );
    Ok(())
}

/// A dry run against the live cluster plans every object as YAML (Secret values withheld) and
/// sends nothing, not even the kubeadm:cluster-admins binding a real run creates first.
async fn check_dry_run(root: &Path, config: &Path) -> Result<()> {
    let plan = kubeforge(root, config, &["bootstrap-token", "--dry-run"])?;
    for line in [
        format!("[dryrun] [bootstrap-token] Would perform action APPLY on Secret kube-system/bootstrap-token-{TOKEN_ID}\n"),
        "[dryrun] [bootstrap-token] Would perform action APPLY on ClusterRoleBinding kubeadm:kubelet-bootstrap\n".into(),
        "[dryrun] [bootstrap-token] Would perform action APPLY on ConfigMap kube-public/cluster-info\n".into(),
        "      token-secret: (withheld)\n".into(),
        "[dryrun] [bootstrap-token] Would perform action APPLY on ClusterRoleBinding kubeadm:cluster-admins\n".into(),
    ] {
        ensure!(plan.contains(&line), "{line:?} not in the plan:\n{plan}");
    }
    let plan = kubeforge(root, config, &["addon", "all", "--dry-run"])?;
    ensure!(
        plan.contains(
            "[dryrun] [addon/coredns] Would perform action APPLY on Service kube-system/kube-dns\n"
        ),
        "{plan}"
    );
    // admin.conf may read nothing before the first real run binds kubeadm:cluster-admins.
    let admin = kube_client(root, "super-admin.conf").await?;
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
async fn check_node_csr(root: &Path) -> Result<()> {
    let key = rcgen::KeyPair::generate()?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("system:node:{NODE_NAME}"),
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
    let csrs = Api::<CertificateSigningRequest>::all(token_client(root)?);
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
    let mut config = Config::new("https://127.0.0.1:6443".parse()?);
    let ca = std::fs::read_to_string(root.join("etc/kubernetes/pki/ca.crt"))?;
    let body: String = ca.lines().filter(|l| !l.starts_with("-----")).collect();
    config.root_cert = Some(vec![
        base64::engine::general_purpose::STANDARD.decode(body)?,
    ]);
    config.auth_info.client_certificate_data =
        Some(base64::engine::general_purpose::STANDARD.encode(&certificate));
    config.auth_info.client_key_data = Some(
        base64::engine::general_purpose::STANDARD
            .encode(key.serialize_pem())
            .into(),
    );
    let (user, groups) = whoami(Client::try_from(config)?).await?;
    assert_eq!(user, format!("system:node:{NODE_NAME}"));
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

/// One whole `kubeforge init --upload-certs`, no phase skipped, with the stand-in playing the
/// kubelet service: kubelet-start writes the kubelet's files and restarts it through
/// `--service-command`, wait-control-plane polls the kubelet's healthz and the components' health
/// endpoints, the stand-in's kubelet registers the Node with kubelet.conf's credentials (which
/// NodeRestriction must accept) while mark-control-plane waits for it, kubelet-finalize points
/// kubelet.conf at the rotatable certificate, and the real kubeadm reads the cluster's
/// kubeadm-config afterwards.
#[tokio::test(flavor = "multi_thread")]
async fn one_init_brings_up_a_control_plane_with_the_stand_in() -> Result<()> {
    let bin = testenv_bin_dir()?;
    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(900))?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc/kubernetes/manifests"))?;
    let config = dir.path().join("kubeadm.yaml");
    // No advertiseAddress: kubeforge picks the default-route interface's address as kubeadm
    // does, and the real kubeadm reading the cluster's configuration afterwards refuses a
    // loopback one.
    std::fs::write(
        &config,
        kubeadm_config().replace("  advertiseAddress: 127.0.0.1\n", ""),
    )?;
    let stand_in = StandIn::start(&root, &bin)?;
    let service = stand_in.service_command_line()?;
    let result = async {
        let root = root.clone();
        let config = config.clone();
        let output = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_kubeforge"))
                .arg("--root")
                .arg(&root)
                .args(["--service-command", &service])
                .args(["init", "--upload-certs", "--config"])
                .arg(&config)
                .output()
        })
        .await??;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        ensure!(output.status.success(), "kubeforge init: {text}");
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
        Ok(text)
    }
    .await;
    let result = match result {
        Ok(_) => check_whole_init(&root, &bin).await,
        Err(e) => Err(e),
    };
    let logs = if result.is_err() {
        format!(
            "\n--- kubelet ---\n{}\n--- kube-apiserver ---\n{}",
            stand_in.log_tail("kubelet", 30),
            stand_in.log_tail("kube-apiserver", 30)
        )
    } else {
        String::new()
    };
    stand_in.stop()?;
    result.with_context(|| logs)
}

async fn check_whole_init(root: &Path, bin: &Path) -> Result<()> {
    let kubelet = root.join("var/lib/kubelet");
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
    let kubelet_conf: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(
        root.join("etc/kubernetes/kubelet.conf"),
    )?)?;
    ensure!(
        kubelet_conf["users"][0]["user"]["client-certificate"]
            == "/var/lib/kubelet/pki/kubelet-client-current.pem",
        "kubelet.conf points at the rotatable certificate: {kubelet_conf}"
    );

    let admin = admin_client(root).await?;
    let admin_conf: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(
        root.join("etc/kubernetes/admin.conf"),
    )?)?;
    let server = admin_conf["clusters"][0]["cluster"]["server"]
        .as_str()
        .context("admin.conf names its server")?;
    check_addons(&admin, server).await?;
    let node = Api::<Node>::all(admin.clone()).get(NODE_NAME).await?;
    let labels = node.metadata.labels.clone().unwrap_or_default();
    ensure!(
        labels.contains_key("node-role.kubernetes.io/control-plane"),
        "{labels:?}"
    );
    // The stand-in's kubelet registered it as kubelet.conf's identity, through NodeRestriction.
    ensure!(
        node.metadata
            .managed_fields
            .unwrap_or_default()
            .iter()
            .any(|f| f.manager.as_deref() == Some("kubelet")),
        "the Node was registered by the kubelet"
    );
    Api::<ConfigMap>::namespaced(admin.clone(), "kube-public")
        .get("cluster-info")
        .await
        .context("cluster-info")?;
    Api::<Secret>::namespaced(admin.clone(), "kube-system")
        .get("kubeadm-certs")
        .await
        .context("kubeadm-certs")?;

    // The real kubeadm reads the cluster's kubeadm-config (no --config: it fetches it).
    let out = Command::new(bin.join("kubeadm"))
        .args(["certs", "check-expiration", "--rootfs"])
        .arg(root)
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success(),
        "kubeadm certs check-expiration: {text}"
    );
    ensure!(
        text.contains("Reading configuration from the \"kubeadm-config\" ConfigMap")
            && !text.contains("Error reading configuration")
            && text.contains("apiserver "),
        "kubeadm reads our kubeadm-config:\n{text}"
    );
    Ok(())
}
