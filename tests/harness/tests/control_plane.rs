//! The stand-in against the real kubeadm: kubeadm writes PKI, kubeconfigs
//! and static pod manifests into a temp root, the stand-in runs them with the
//! real etcd / kube-apiserver / kube-controller-manager / kube-scheduler, and
//! the API answers /readyz. Needs the testenv binaries (tests/testenv/build.sh,
//! run automatically) and root (kubeadm --rootfs chroots).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use kubeforge_testenv::{
    ControlPlaneLock, Options, Phase, RestartPolicy, StandIn, kubeadm_init_phases, testenv_bin_dir,
};

/// kubeadm refuses a loopback advertise address (it substitutes the
/// default-route IP), so generate with a placeholder from TEST-NET-3 and
/// rewrite it to 127.0.0.1: that is what manifests written with
/// `advertiseAddress: 127.0.0.1` look like.
const PLACEHOLDER: &str = "203.0.113.77";

fn kubeadm_root(bin: &Path, root: &Path) -> Result<()> {
    let config = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: {PLACEHOLDER}
  bindPort: 6443
nodeRegistration:
  name: kf-node
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.35.4
clusterName: kubeforge-test
apiServer:
  certSANs: [\"127.0.0.1\", \"localhost\"]
"
    );
    kubeadm_init_phases(
        bin,
        root,
        &config,
        &[
            "certs all",
            "kubeconfig all",
            "etcd local",
            "control-plane all",
        ],
    )?;
    let k8s = root.join("etc/kubernetes");
    let mut files: Vec<_> = std::fs::read_dir(k8s.join("manifests"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.extend(
        [
            "admin.conf",
            "super-admin.conf",
            "controller-manager.conf",
            "scheduler.conf",
        ]
        .map(|f| k8s.join(f)),
    );
    for f in files {
        let text = std::fs::read_to_string(&f).with_context(|| f.display().to_string())?;
        std::fs::write(&f, text.replace(PLACEHOLDER, "127.0.0.1"))?;
    }
    Ok(())
}

#[test]
fn kubeadm_manifests_run_under_the_stand_in() -> Result<()> {
    let bin = testenv_bin_dir()?;
    let _ports = ControlPlaneLock::acquire_timeout(Duration::from_secs(600))?;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("root");
    kubeadm_root(&bin, &root)?;

    let options = Options {
        restart: RestartPolicy::Never,
        ..Options::default()
    };
    let stand_in = StandIn::start_with(&root, &bin, options)?;
    let begin = Instant::now();
    stand_in.wait_ready("etcd", Duration::from_secs(120))?;
    stand_in.wait_ready("kube-apiserver", Duration::from_secs(120))?;
    eprintln!("kube-apiserver ready after {:?}", begin.elapsed());
    assert_eq!(stand_in.kubectl(&["get", "--raw", "/readyz"])?, "ok");
    stand_in.wait_all_ready(
        &["kube-controller-manager", "kube-scheduler"],
        Duration::from_secs(120),
    )?;

    // Path mapping: every pki/kubeconfig path points into the root.
    let apiserver = stand_in.status("kube-apiserver").expect("apiserver status");
    let root_s = stand_in.root().to_string_lossy().into_owned();
    assert!(
        apiserver
            .args
            .iter()
            .any(|a| a == &format!("--client-ca-file={root_s}/etc/kubernetes/pki/ca.crt"))
    );
    assert!(apiserver.unmapped_paths.is_empty(), "{apiserver:?}");
    let kcm = stand_in.status("kube-controller-manager").unwrap();
    assert!(
        kcm.args
            .iter()
            .any(|a| a == &format!("--kubeconfig={root_s}/etc/kubernetes/controller-manager.conf"))
    );
    assert!(stand_in.root().join("var/lib/etcd/member").is_dir());

    // A changed manifest restarts its component.
    let sched = root.join("etc/kubernetes/manifests/kube-scheduler.yaml");
    let old_pid = stand_in.status("kube-scheduler").unwrap().pid.unwrap();
    let text = std::fs::read_to_string(&sched)?;
    std::fs::write(
        &sched,
        text.replace("--leader-elect=true", "--leader-elect=false"),
    )?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = stand_in.status("kube-scheduler");
        if st
            .as_ref()
            .and_then(|s| s.pid)
            .is_some_and(|p| p != old_pid)
        {
            assert!(
                st.unwrap()
                    .args
                    .contains(&"--leader-elect=false".to_string())
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kube-scheduler was not restarted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    stand_in.wait_ready("kube-scheduler", Duration::from_secs(60))?;

    // A component that exits is reported, with its log.
    let bad = text
        .replace("name: kube-scheduler\n", "name: bad-scheduler\n")
        .replace("--bind-address=127.0.0.1", "--no-such-flag=1");
    std::fs::write(root.join("etc/kubernetes/manifests/bad.yaml"), bad)?;
    // (Its probe port 10259 is the real scheduler's, so wait for the exit
    // rather than for readiness.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while stand_in.status("bad-scheduler").map(|s| s.phase) != Some(Phase::Exited) {
        assert!(Instant::now() < deadline, "bad-scheduler did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }
    let err = stand_in
        .wait_ready("bad-scheduler", Duration::from_secs(5))
        .expect_err("bad-scheduler must not become ready");
    assert!(format!("{err:#}").contains("unknown flag"), "{err:#}");
    assert!(
        stand_in
            .log("bad-scheduler")
            .contains("unknown flag: --no-such-flag")
    );
    assert!(
        stand_in
            .exits()
            .iter()
            .any(|e| e.component == "bad-scheduler" && e.code == Some(1))
    );

    // Stopping leaves no processes behind.
    let pids: Vec<u32> = stand_in.components().iter().filter_map(|c| c.pid).collect();
    assert_eq!(pids.len(), 4, "{:?}", stand_in.components());
    let stopped = Instant::now();
    stand_in.stop()?;
    eprintln!("stopped in {:?}", stopped.elapsed());
    for pid in pids {
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        assert!(!alive, "pid {pid} still running after stop");
    }
    Ok(())
}
