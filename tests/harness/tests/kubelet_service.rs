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

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use common::{NODE_NAME, NODE_PHASES, client, config, kubeforge_phases};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, PostParams};
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
