//! The stand-in's kubelet service, driven the way a host drives systemd:
//! `kubeforge-testenv service --root ROOT <stop|start|restart> kubelet`.
//!
//! * `service_restart_kubelet_*`: a node written by kubeforge (`certs`,
//!   `kubeconfig`, `etcd`, `control-plane`) plus a hand-written minimal
//!   `var/lib/kubelet/config.yaml`; `service restart kubelet` brings up
//!   `/healthz` on 127.0.0.1:10248, seeds `kubelet-client-current.pem` with
//!   kubelet.conf's certificate and key, and the Node appears, created by
//!   field manager `kubelet` with that certificate, whose identity is
//!   `system:node:kf-node` (SelfSubjectReview) and which NodeRestriction
//!   holds to its own Node; `service stop kubelet` closes `/healthz`; a
//!   second start reuses the store. Needs the testenv binaries and the
//!   control-plane lock.
//! * `service_without_a_stand_in_*`: the service command fails with a clear
//!   message when no stand-in runs for the root, and for another unit.
//! * `kubelet_without_its_files_*`: with no config.yaml / kubelet.conf the
//!   service "starts" (as systemd's does) but crash-loops with /healthz down,
//!   saying why in the kubelet's log, and re-reads its files on each restart.
//! * `mirror_pods_*`: a node advertising this host's default-route address
//!   (kubeadm refuses a loopback one when it reads the cluster), kubeforge's
//!   `kubelet-start` (config.yaml, kubeadm-flags.env, `service restart
//!   kubelet` through the stand-in's service command) and `upload-config
//!   all`; the four mirror pods `<component>-kf-node` appear with the
//!   kubelet's annotations, the Node owner reference, field manager
//!   `kubelet` (spec and status) and Ready=True; the real kubeadm's `certs
//!   check-expiration --rootfs` (no --config) reads the kubeadm-config
//!   ConfigMap and the API server's mirror pod in seconds; a changed
//!   kube-scheduler.yaml replaces its mirror pod (new config hash, Ready
//!   again), a scheduler that exits makes it Ready=False, a removed manifest
//!   deletes it, and `service stop kubelet` leaves the others. Needs root
//!   (`kubeadm --rootfs` chroots).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use common::{NODE_NAME, NODE_PHASES, client, config, kubeforge_phases, kubeforge_phases_with};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, PostParams};
use kubeforge_testenv::kubelet::{CONFIG_HASH, CONFIG_MIRROR, CONFIG_SEEN, CONFIG_SOURCE};
use kubeforge_testenv::manifest::HttpProbe;
use kubeforge_testenv::{
    ControlPlaneLock, KUBELET_CLIENT_CURRENT, KUBELET_CONFIG, KUBELET_PKI_DIR, Options,
    RestartPolicy, SERVICE_SOCKET, StandIn, busy_control_plane_ports, probe, service_command,
    testenv_bin_dir,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

const TIMEOUT: Duration = Duration::from_secs(120);

const MINIMAL_KUBELET_CONFIG: &str = "apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
healthzBindAddress: 127.0.0.1
healthzPort: 10248
";

/// Runs `<service command for root> ACTION SERVICE`, as a host would.
fn service(root: &Path, action: &str, unit: &str) -> Result<Output> {
    let argv = service_command(root)?;
    Command::new(&argv[0])
        .args(&argv[1..])
        .args([action, unit])
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} {action} {unit}", argv.join(" ")))
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

fn service_ok(root: &Path, action: &str) -> Result<String> {
    let out = service(root, action, "kubelet")?;
    ensure!(
        out.status.success(),
        "service {action} kubelet: {}",
        text(&out)
    );
    Ok(String::from_utf8_lossy(&out.stderr).trim().to_string())
}

fn healthz() -> Result<probe::ProbeResponse> {
    probe::http_get(
        &HttpProbe {
            https: false,
            host: "127.0.0.1".into(),
            port: 10248,
            path: "/healthz".into(),
        },
        Duration::from_secs(3),
    )
}

fn assert_healthz_refused(when: &str) -> Result<()> {
    match healthz() {
        Ok(r) => bail!(
            "{when}: http://127.0.0.1:10248/healthz answered {} {:?}",
            r.status,
            r.body
        ),
        Err(e) => {
            let msg = format!("{e:#}");
            ensure!(
                msg.contains("refused"),
                "{when}: /healthz should refuse connections: {msg}"
            );
            Ok(())
        }
    }
}

/// `kubelet-client-*.pem` files other than the current/updated links.
fn store_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(KUBELET_PKI_DIR))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.retain(|p| {
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        name.starts_with("kubelet-client-2") && name.ends_with(".pem")
    });
    files.sort();
    Ok(files)
}

/// kubelet.conf's embedded client certificate and key, decoded.
fn kubelet_conf_identity(root: &Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let path = root.join("etc/kubernetes/kubelet.conf");
    let kc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(&path)?)?;
    let user = &kc["users"][0]["user"];
    let decode = |field: &str| -> Result<Vec<u8>> {
        let b64 = user[field]
            .as_str()
            .with_context(|| format!("{} has no {field}", path.display()))?;
        Ok(base64::engine::general_purpose::STANDARD.decode(b64)?)
    };
    Ok((
        decode("client-certificate-data")?,
        decode("client-key-data")?,
    ))
}

fn key_der(pem: &[u8]) -> Result<Vec<u8>> {
    Ok(PrivateKeyDer::from_pem_slice(pem)?.secret_der().to_vec())
}

/// A client that authenticates with `pem` (certificate + key) and trusts
/// ROOT's cluster CA.
fn pem_client(root: &Path, pem: &Path) -> Result<kube::Client> {
    let ca = std::fs::read(root.join("etc/kubernetes/pki/ca.crt"))?;
    let mut config = kube::Config::new("https://127.0.0.1:6443".parse()?);
    config.root_cert = Some(cert_ders(&ca)?);
    config.auth_info.client_certificate = Some(pem.display().to_string());
    config.auth_info.client_key = Some(pem.display().to_string());
    Ok(kube::Client::try_from(config)?)
}

fn cert_ders(pem: &[u8]) -> Result<Vec<Vec<u8>>> {
    Ok(CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.as_ref().to_vec()))
        .collect::<Result<Vec<_>, _>>()?)
}

fn with_logs<T>(stand_in: &StandIn, result: Result<T>) -> Result<T> {
    result.map_err(|e| {
        let tails: String = ["kubelet", "kube-apiserver", "etcd"]
            .iter()
            .map(|c| format!("\n--- last lines of {c} ---\n{}", stand_in.log_tail(c, 25)))
            .collect();
        e.context(format!("logs:{tails}"))
    })
}

// ---------------------------------------------------------------------------

#[test]
fn service_restart_kubelet_serves_healthz_seeds_the_store_and_registers_the_node() -> Result<()> {
    let bin = testenv_bin_dir()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    kubeforge_phases(&root, &config("127.0.0.1", "ECDSA-P256"), &NODE_PHASES)?;
    // What kubelet-start would write: a minimal config.yaml, and the flags
    // kubeadm writes when the node name is not the host name.
    std::fs::create_dir_all(root.join("var/lib/kubelet"))?;
    std::fs::write(root.join(KUBELET_CONFIG), MINIMAL_KUBELET_CONFIG)?;
    std::fs::write(
        root.join("var/lib/kubelet/kubeadm-flags.env"),
        format!("KUBELET_KUBEADM_ARGS=\"--hostname-override={NODE_NAME}\"\n"),
    )?;

    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(900))?;
    let busy = busy_control_plane_ports();
    ensure!(
        busy.is_empty(),
        "ports {busy:?} are in use by something that does not hold the control-plane lock"
    );
    let options = Options {
        restart: RestartPolicy::Never,
        ..Options::default()
    };
    let stand_in = StandIn::start_with(&root, &bin, options)?;
    let result = with_logs(&stand_in, kubelet_checks(&stand_in));
    let root = stand_in.root().to_path_buf();
    stand_in.stop()?;
    result?;

    // The stand-in is gone: its socket with it, and the service command says so.
    ensure!(
        !root.join(SERVICE_SOCKET).exists(),
        "{} was left behind",
        root.join(SERVICE_SOCKET).display()
    );
    let out = service(&root, "restart", "kubelet")?;
    ensure!(
        out.status.code() == Some(1)
            && String::from_utf8_lossy(&out.stderr).contains("no kubelet stand-in runs for"),
        "after the stand-in stopped: {}",
        text(&out)
    );
    Ok(())
}

fn kubelet_checks(stand_in: &StandIn) -> Result<()> {
    let root = stand_in.root();
    // Stopped until the host starts it, like the unit before kubelet-start.
    ensure!(
        !stand_in.kubelet_running(),
        "{:?}",
        stand_in.kubelet_status()
    );
    assert_healthz_refused("before service start")?;
    let out = service(root, "is-active", "kubelet")?;
    ensure!(
        out.status.code() == Some(3) && String::from_utf8_lossy(&out.stdout).trim() == "inactive",
        "is-active before start: {}",
        text(&out)
    );

    // 1. restart → /healthz, before the API server is even up.
    let said = service_ok(root, "restart")?;
    eprintln!("service restart kubelet: {said}");
    let r = healthz()?;
    ensure!(
        r.status == 200 && r.body == "ok",
        "/healthz: {} {:?}",
        r.status,
        r.body
    );
    ensure!(
        stand_in.kubelet_running(),
        "{:?}",
        stand_in.kubelet_status()
    );
    let out = service(root, "is-active", "kubelet")?;
    ensure!(out.status.success(), "is-active: {}", text(&out));

    // 2. The certificate store, seeded from kubelet.conf.
    let current = root.join(KUBELET_CLIENT_CURRENT);
    let link = std::fs::read_link(&current)
        .with_context(|| format!("{} is not a symlink", current.display()))?;
    let files = store_files(root)?;
    ensure!(files.len() == 1, "store files: {files:?}");
    ensure!(
        current.parent().unwrap().join(&link) == files[0],
        "{} -> {} but the store holds {files:?}",
        current.display(),
        link.display()
    );
    let name = files[0].file_name().unwrap().to_string_lossy().into_owned();
    let stamp = name
        .strip_prefix("kubelet-client-")
        .and_then(|n| n.strip_suffix(".pem"))
        .unwrap_or_default();
    ensure!(
        stamp.len() == 19
            && stamp
                .char_indices()
                .all(|(i, c)| if [4, 7, 10, 13, 16].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }),
        "{name} is not kubelet-client-YYYY-MM-DD-HH-MM-SS.pem"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files[0])?.permissions().mode() & 0o777;
    ensure!(mode == 0o600, "{name} has mode {mode:o}");
    let (conf_cert, conf_key) = kubelet_conf_identity(root)?;
    let pem = std::fs::read(&current)?;
    ensure!(
        cert_ders(&pem)? == cert_ders(&conf_cert)?,
        "kubelet-client-current.pem's certificate is not kubelet.conf's"
    );
    ensure!(
        key_der(&pem)? == key_der(&conf_key)?,
        "kubelet-client-current.pem's key is not kubelet.conf's"
    );

    // 3. The Node, registered with that identity once the API answers.
    stand_in.wait_ready("kube-apiserver", TIMEOUT)?;
    let registered = stand_in.wait_kubelet_registered(Duration::from_secs(60))?;
    ensure!(registered == NODE_NAME, "registered as {registered}");
    let k8s = root.join("etc/kubernetes");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let admin = client(&k8s.join("super-admin.conf")).await?;
        let node = Api::<Node>::all(admin).get(NODE_NAME).await?;
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let arch = kubeforge_testenv::kubelet::go_arch();
        for (k, v) in [
            ("kubernetes.io/hostname", NODE_NAME),
            ("kubernetes.io/os", "linux"),
            ("kubernetes.io/arch", arch),
            ("beta.kubernetes.io/os", "linux"),
            ("beta.kubernetes.io/arch", arch),
        ] {
            ensure!(
                labels.get(k).map(String::as_str) == Some(v),
                "label {k}={v} missing: {labels:?}"
            );
        }
        let managers: Vec<(String, String)> = node
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                (
                    m.manager.unwrap_or_default(),
                    m.operation.unwrap_or_default(),
                )
            })
            .collect();
        ensure!(
            managers.contains(&("kubelet".to_string(), "Update".to_string())),
            "Node {NODE_NAME} was not written by field manager kubelet: {managers:?}"
        );

        // Who the store's certificate is.
        let kubelet = pem_client(root, &current)?;
        let review = Api::<SelfSubjectReview>::all(kubelet.clone())
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await
            .context("SelfSubjectReview with kubelet-client-current.pem")?;
        let info = review.status.and_then(|s| s.user_info).unwrap_or_default();
        let groups = info.groups.unwrap_or_default();
        ensure!(
            info.username.as_deref() == Some(&format!("system:node:{NODE_NAME}"))
                && groups.iter().any(|g| g == "system:nodes"),
            "kubelet-client-current.pem is {:?} in {groups:?}",
            info.username
        );
        // NodeRestriction holds that identity to its own Node, so the Node
        // it created is the one it may create.
        let other: Node =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "kf-other-node"}}))?;
        match Api::<Node>::all(kubelet)
            .create(&PostParams::default(), &other)
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 403 => {
                eprintln!("NodeRestriction: {}", s.message)
            }
            other => bail!("system:node:{NODE_NAME} creating Node kf-other-node: {other:?}"),
        }
        anyhow::Ok(())
    })?;

    // 4. stop → /healthz closed; the control plane keeps running.
    let said = service_ok(root, "stop")?;
    eprintln!("service stop kubelet: {said}");
    assert_healthz_refused("after service stop")?;
    ensure!(
        !stand_in.kubelet_running(),
        "{:?}",
        stand_in.kubelet_status()
    );
    ensure!(
        stand_in.probe("kube-apiserver")?,
        "the API server stopped with the kubelet"
    );

    // 5. start again: the store's current pair is used as it is, the Node is
    //    found.
    service_ok(root, "start")?;
    let r = healthz()?;
    ensure!(r.status == 200, "/healthz after start: {}", r.status);
    ensure!(
        store_files(root)? == files,
        "a restart re-seeded the store: {:?}",
        store_files(root)?
    );
    stand_in.wait_kubelet_registered(Duration::from_secs(60))?;
    let log = stand_in.log("kubelet");
    ensure!(
        log.contains("was already registered"),
        "kubelet.log:\n{log}"
    );
    // The in-process API does the same as the socket.
    stand_in.kubelet_stop()?;
    assert_healthz_refused("after kubelet_stop()")?;
    Ok(())
}

#[test]
fn service_without_a_stand_in_fails_with_a_clear_message() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let out = service(dir.path(), "restart", "kubelet")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.code() == Some(1)
            && stderr.contains(&format!(
                "no kubelet stand-in runs for {}",
                dir.path().display()
            ))
            && stderr.contains("kubeforge-testenv run --root"),
        "{}",
        text(&out)
    );
    let out = service(dir.path(), "restart", "containerd")?;
    ensure!(
        out.status.code() == Some(5)
            && String::from_utf8_lossy(&out.stderr).contains("only the \"kubelet\" service"),
        "{}",
        text(&out)
    );
    Ok(())
}

#[test]
fn kubelet_without_its_files_crash_loops_with_healthz_down() -> Result<()> {
    let bin = testenv_bin_dir()?;
    let dir = tempfile::tempdir()?;
    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(900))?;
    let stand_in = StandIn::start(dir.path().join("root"), &bin)?;
    let result = with_logs(&stand_in, crash_loop_checks(&stand_in));
    stand_in.stop()?;
    result
}

fn crash_loop_checks(stand_in: &StandIn) -> Result<()> {
    let root = stand_in.root();
    // systemctl succeeds when the unit starts; the kubelet then exits.
    let said = service_ok(root, "restart")?;
    ensure!(
        said.contains("exits at once") && said.contains("config.yaml"),
        "service restart kubelet said: {said}"
    );
    assert_healthz_refused("without config.yaml")?;
    let st = stand_in.kubelet_status();
    ensure!(st.active && !st.running, "{st:?}");
    let out = service(root, "is-active", "kubelet")?;
    ensure!(
        out.status.code() == Some(3)
            && String::from_utf8_lossy(&out.stdout).contains("auto-restart"),
        "{}",
        text(&out)
    );
    ensure!(
        stand_in
            .log("kubelet")
            .contains("failed to load kubelet config file"),
        "kubelet.log:\n{}",
        stand_in.log("kubelet")
    );

    // The next automatic restart reads config.yaml and stops at kubelet.conf.
    std::fs::create_dir_all(root.join("var/lib/kubelet"))?;
    std::fs::write(root.join(KUBELET_CONFIG), MINIMAL_KUBELET_CONFIG)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !stand_in
        .log("kubelet")
        .contains("unable to load kubeconfig")
    {
        ensure!(
            Instant::now() < deadline,
            "no restart attempt read config.yaml within 30s:\n{}",
            stand_in.log("kubelet")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_healthz_refused("without kubelet.conf")?;
    ensure!(
        !stand_in.kubelet_running(),
        "{:?}",
        stand_in.kubelet_status()
    );
    service_ok(root, "stop")?;
    ensure!(!stand_in.kubelet_status().active);
    Ok(())
}

// ---------------------------------------------------------------------------
// Mirror pods

/// The four static pods kubeforge's `etcd local` and `control-plane all`
/// write.
const STATIC_PODS: [&str; 4] = [
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];

/// This host's address on its default route, the address kubeadm itself
/// would choose. The node below advertises it: kubeadm rejects a loopback
/// advertise address when it reads the cluster's configuration (its dynamic
/// defaults look for a global unicast address on `lo`, fail with "unable to
/// select an IP from lo network interface" and fall back to defaults), so a
/// 127.0.0.1 node cannot show that kubeadm reads the cluster.
fn host_address() -> Result<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0")?;
    // No packet is sent: connect only picks the route and source address.
    socket
        .connect("203.0.113.1:9")
        .context("this test needs an IPv4 default route (the node advertises its address)")?;
    let ip = socket.local_addr()?.ip();
    ensure!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "the default route's source address is {ip}; this test needs a non-loopback IPv4 address"
    );
    Ok(ip)
}

/// The mirror pods bound to NODE_NAME, by name.
async fn mirror_pods(admin: &kube::Client) -> Result<BTreeMap<String, Pod>> {
    let list = Api::<Pod>::all(admin.clone())
        .list(&ListParams::default().fields(&format!("spec.nodeName={NODE_NAME}")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter(|p| annotation(p, CONFIG_MIRROR).is_some())
        .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
        .collect())
}

fn annotation<'p>(pod: &'p Pod, key: &str) -> Option<&'p str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn ready(pod: &Pod) -> Option<&str> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| c.status.as_str())
}

/// Polls `check` every 250 ms until it gives `Ok(value)`; on timeout fails
/// with the last `Err(why)` it gave.
async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<(T, Duration)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<std::result::Result<T, String>>>,
{
    let begin = Instant::now();
    loop {
        let why = match check().await? {
            Ok(value) => return Ok((value, begin.elapsed())),
            Err(why) => why,
        };
        if begin.elapsed() >= timeout {
            bail!("{what}: not within {timeout:?}: {why}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[test]
fn mirror_pods_follow_the_manifests_and_kubeadm_reads_the_cluster_config() -> Result<()> {
    let bin = testenv_bin_dir()?;
    let advertise = host_address()?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    let config_yaml = config(&advertise.to_string(), "ECDSA-P256");
    kubeforge_phases(&root, &config_yaml, &NODE_PHASES)?;

    let waited = Instant::now();
    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(900))?;
    eprintln!(
        "control-plane lock after {:?}; node advertises {advertise}",
        waited.elapsed()
    );
    let begin = Instant::now();
    let busy = busy_control_plane_ports();
    ensure!(
        busy.is_empty(),
        "ports {busy:?} are in use by something that does not hold the control-plane lock"
    );
    let options = Options {
        restart: RestartPolicy::Never,
        ..Options::default()
    };
    let stand_in = StandIn::start_with(&root, &bin, options)?;
    let result = with_logs(
        &stand_in,
        mirror_checks(&stand_in, &bin, &config_yaml, advertise),
    );
    stand_in.stop()?;
    eprintln!("with the control plane: {:?}", begin.elapsed());
    result
}

fn mirror_checks(
    stand_in: &StandIn,
    bin: &Path,
    config_yaml: &str,
    advertise: std::net::IpAddr,
) -> Result<()> {
    let root = stand_in.root();
    // kubeforge's kubelet phase writes config.yaml and kubeadm-flags.env
    // (the node name differs from the host name) and restarts the kubelet
    // through the stand-in's service command.
    let service_command = stand_in.service_command_line()?;
    kubeforge_phases_with(
        root,
        config_yaml,
        &["kubelet-start"],
        &["--service-command", &service_command],
    )?;
    stand_in.wait_ready("kube-apiserver", TIMEOUT)?;
    let registered = stand_in.wait_kubelet_registered(Duration::from_secs(60))?;
    ensure!(registered == NODE_NAME, "registered as {registered}");
    // kubeadm-config and kubelet-config, as `kubeadm init` uploads them.
    kubeforge_phases(root, config_yaml, &["upload-config all"])?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let admin = client(&root.join("etc/kubernetes/super-admin.conf")).await?;
        let node = Api::<Node>::all(admin.clone()).get(NODE_NAME).await?;
        let node_uid = node.metadata.uid.clone().unwrap_or_default();

        // 1. The four mirror pods appear and become ready.
        let names: Vec<String> = STATIC_PODS
            .iter()
            .map(|c| format!("{c}-{NODE_NAME}"))
            .collect();
        let (pods, took) = wait_for("four ready mirror pods", TIMEOUT, || async {
            let pods = mirror_pods(&admin).await?;
            let state: Vec<String> = names
                .iter()
                .map(|n| match pods.get(n) {
                    None => format!("{n}: missing"),
                    Some(p) => format!("{n}: Ready={:?}", ready(p)),
                })
                .collect();
            let all = names
                .iter()
                .all(|n| pods.get(n).is_some_and(|p| ready(p) == Some("True")));
            Ok(if all { Ok(pods) } else { Err(state.join(", ")) })
        })
        .await?;
        eprintln!("four mirror pods, all Ready, {took:?} after upload-config");
        let seen_re = |s: &str| {
            s.len() == "2006-01-02T15:04:05.000000000Z".len()
                && s.ends_with('Z')
                && s.as_bytes()[10] == b'T'
                && s.as_bytes()[19] == b'.'
        };
        for component in STATIC_PODS {
            let name = format!("{component}-{NODE_NAME}");
            let pod = &pods[&name];
            ensure!(
                pod.metadata.namespace.as_deref() == Some("kube-system"),
                "{name}: namespace {:?}",
                pod.metadata.namespace
            );
            let hash = annotation(pod, CONFIG_HASH).unwrap_or_default();
            ensure!(
                hash.len() == 32 && hash.chars().all(|c| c.is_ascii_hexdigit()),
                "{name}: config.hash {hash:?}"
            );
            ensure!(
                annotation(pod, CONFIG_MIRROR) == Some(hash),
                "{name}: config.mirror {:?} is not config.hash {hash}",
                annotation(pod, CONFIG_MIRROR)
            );
            ensure!(
                annotation(pod, CONFIG_SOURCE) == Some("file"),
                "{name}: config.source {:?}",
                annotation(pod, CONFIG_SOURCE)
            );
            let seen = annotation(pod, CONFIG_SEEN).unwrap_or_default();
            ensure!(seen_re(seen), "{name}: config.seen {seen:?}");
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            ensure!(
                labels.get("component").map(String::as_str) == Some(component)
                    && labels.get("tier").map(String::as_str) == Some("control-plane"),
                "{name}: labels {labels:?}"
            );
            let owners = pod.metadata.owner_references.clone().unwrap_or_default();
            ensure!(
                owners.len() == 1
                    && owners[0].api_version == "v1"
                    && owners[0].kind == "Node"
                    && owners[0].name == NODE_NAME
                    && owners[0].uid == node_uid
                    && owners[0].controller == Some(true),
                "{name}: ownerReferences {owners:?} (Node uid {node_uid})"
            );
            let spec = pod.spec.as_ref().context("no spec")?;
            ensure!(
                spec.node_name.as_deref() == Some(NODE_NAME),
                "{name}: nodeName {:?}",
                spec.node_name
            );
            ensure!(
                spec.tolerations.as_ref().is_some_and(|t| t.iter().any(|t| {
                    t.operator.as_deref() == Some("Exists")
                        && t.effect.as_deref() == Some("NoExecute")
                        && t.key.is_none()
                })),
                "{name}: no Exists/NoExecute toleration: {:?}",
                spec.tolerations
            );
            let status = pod.status.as_ref().context("no status")?;
            ensure!(
                status.phase.as_deref() == Some("Running")
                    && status
                        .container_statuses
                        .as_ref()
                        .is_some_and(|cs| cs.len() == 1 && cs[0].ready && cs[0].name == component),
                "{name}: status {status:?}"
            );
            // Written with field manager kubelet, the spec by a create and
            // the status through pods/status.
            let managers: Vec<(String, String, String)> = pod
                .metadata
                .managed_fields
                .clone()
                .unwrap_or_default()
                .into_iter()
                .map(|m| {
                    (
                        m.manager.unwrap_or_default(),
                        m.operation.unwrap_or_default(),
                        m.subresource.unwrap_or_default(),
                    )
                })
                .collect();
            for want in [("kubelet", "Update", ""), ("kubelet", "Update", "status")] {
                ensure!(
                    managers
                        .iter()
                        .any(|(m, o, s)| (m.as_str(), o.as_str(), s.as_str()) == want),
                    "{name}: no managedFields entry {want:?}: {managers:?}"
                );
            }
        }
        // What kubeadm looks up: the API server's advertise address.
        let endpoint = annotation(
            &pods[&format!("kube-apiserver-{NODE_NAME}")],
            "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint",
        );
        ensure!(
            endpoint == Some(&format!("{advertise}:6443")),
            "kube-apiserver mirror pod: advertise-address.endpoint {endpoint:?}"
        );
        let mut listed = stand_in.kubelet_status().mirror_pods;
        listed.sort();
        let want: Vec<String> = names.iter().map(|n| format!("kube-system/{n}")).collect();
        ensure!(listed == want, "kubelet_status().mirror_pods: {listed:?}");

        // Created with kubelet.conf's identity: the emulation holds no
        // other credential than its certificate store, which is
        // system:node:kf-node, and it logs each creation as that identity.
        let current = root.join(KUBELET_CLIENT_CURRENT);
        let review = Api::<SelfSubjectReview>::all(pem_client(root, &current)?)
            .create(&PostParams::default(), &SelfSubjectReview::default())
            .await?;
        let user = review
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username);
        ensure!(
            user.as_deref() == Some(&format!("system:node:{NODE_NAME}")),
            "the kubelet's certificate is {user:?}"
        );
        let log = stand_in.log("kubelet");
        for n in &names {
            ensure!(
                log.contains(&format!(
                    "Created mirror pod kube-system/{n} (config hash {}",
                    annotation(&pods[n], CONFIG_HASH).unwrap_or_default()
                )) && log.contains(&format!("as system:node:{NODE_NAME}")),
                "kubelet.log does not show {n} created as system:node:{NODE_NAME}:\n{log}"
            );
        }

        // 2. The real kubeadm reads the cluster's configuration: kubeadm-config,
        //    kubelet-config, the Node and the API server's mirror pod.
        let begin = Instant::now();
        let out = Command::new(bin.join("kubeadm"))
            .args(["certs", "check-expiration", "--rootfs"])
            .arg(root)
            .stdin(Stdio::null())
            .output()
            .context("running kubeadm certs check-expiration")?;
        let took = begin.elapsed();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ensure!(
            out.status.success(),
            "kubeadm certs check-expiration --rootfs failed ({}):\n{said}",
            out.status
        );
        ensure!(
            said.contains(
                "[check-expiration] Reading configuration from the \"kubeadm-config\" ConfigMap"
            ) && !said.contains("Error reading configuration from the Cluster"),
            "kubeadm did not read the cluster's configuration:\n{said}"
        );
        ensure!(
            took < Duration::from_secs(15),
            "kubeadm certs check-expiration took {took:?}:\n{said}"
        );
        eprintln!("kubeadm certs check-expiration read the cluster's configuration in {took:?}");

        // 3. A changed manifest replaces its mirror pod.
        let scheduler = format!("kube-scheduler-{NODE_NAME}");
        let old = &pods[&scheduler];
        let old_hash = annotation(old, CONFIG_HASH).unwrap_or_default().to_string();
        let old_uid = old.metadata.uid.clone().unwrap_or_default();
        let manifest = root.join("etc/kubernetes/manifests/kube-scheduler.yaml");
        let edit = |from: &str, to: &str| -> Result<()> {
            let text = std::fs::read_to_string(&manifest)?;
            ensure!(text.contains(from), "{} has no {from:?}", manifest.display());
            std::fs::write(&manifest, text.replacen(from, to, 1))?;
            Ok(())
        };
        edit(
            "    - --leader-elect=true\n",
            "    - --leader-elect=true\n    - --v=2\n",
        )?;
        let (new_hash, took) = wait_for("a new kube-scheduler mirror pod", TIMEOUT, || async {
            let pods = mirror_pods(&admin).await?;
            let Some(p) = pods.get(&scheduler) else {
                return Ok(Err("no mirror pod".into()));
            };
            let hash = annotation(p, CONFIG_HASH).unwrap_or_default().to_string();
            let args = p.spec.as_ref().and_then(|s| s.containers[0].command.clone());
            Ok(
                if hash != old_hash
                    && annotation(p, CONFIG_MIRROR) == Some(hash.as_str())
                    && p.metadata.uid.as_deref() != Some(old_uid.as_str())
                    && args.is_some_and(|a| a.iter().any(|a| a == "--v=2"))
                    && ready(p) == Some("True")
                {
                    Ok(hash)
                } else {
                    Err(format!("config.hash {hash}, Ready={:?}", ready(p)))
                },
            )
        })
        .await?;
        eprintln!("kube-scheduler's mirror pod: config hash {old_hash} -> {new_hash}, Ready again, in {took:?}");

        // 4. A container that is not up makes its pod not Ready.
        edit("    - --v=2\n", "    - --v=2\n    - --no-such-flag\n")?;
        let (_, took) = wait_for("kube-scheduler's mirror pod Ready=False", TIMEOUT, || async {
            let pods = mirror_pods(&admin).await?;
            let Some(p) = pods.get(&scheduler) else {
                return Ok(Err("no mirror pod".into()));
            };
            let hash = annotation(p, CONFIG_HASH).unwrap_or_default();
            let container = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .and_then(|cs| cs.into_iter().next());
            Ok(
                if hash != new_hash
                    && ready(p) == Some("False")
                    && container.as_ref().is_some_and(|c| {
                        !c.ready && c.state.as_ref().is_some_and(|s| s.running.is_none())
                    })
                {
                    Ok(())
                } else {
                    Err(format!("config.hash {hash}, Ready={:?}, {container:?}", ready(p)))
                },
            )
        })
        .await?;
        eprintln!("kube-scheduler exited: its mirror pod is Ready=False after {took:?}");

        // 5. A removed manifest deletes its mirror pod.
        std::fs::remove_file(&manifest)?;
        let (_, took) = wait_for("kube-scheduler's mirror pod deleted", TIMEOUT, || async {
            let pods = mirror_pods(&admin).await?;
            Ok(if pods.contains_key(&scheduler) {
                Err(format!("still there: {:?}", pods.keys().collect::<Vec<_>>()))
            } else {
                Ok(())
            })
        })
        .await?;
        eprintln!("manifest removed: mirror pod deleted after {took:?}");

        // 6. A stopped kubelet leaves its mirror pods.
        service_ok(root, "stop")?;
        let before = mirror_pods(&admin).await?;
        tokio::time::sleep(3 * kubeforge_testenv::kubelet::SYNC_INTERVAL).await;
        let after = mirror_pods(&admin).await?;
        let uids = |m: &BTreeMap<String, Pod>| -> Vec<(String, Option<String>)> {
            m.iter()
                .map(|(n, p)| (n.clone(), p.metadata.uid.clone()))
                .collect()
        };
        ensure!(
            after.len() == 3 && uids(&before) == uids(&after),
            "after service stop: {:?} (before {:?})",
            uids(&after),
            uids(&before)
        );
        anyhow::Ok(())
    })
}
