//! The test env itself: nodes behave like machines with systemd, a cluster's nodes reach each
//! other and the host reaches them, and a cluster leaves nothing behind — deleted, or ended by
//! the death of the process that owned it. No kubeadm or kubeforge here (host/tests/real_node.rs
//! runs a whole cluster); these need the test env's binaries and root.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use kubeforge_testenv::cluster::{self, leftovers};
use kubeforge_testenv::state::ProcessId;
use kubeforge_testenv::{Cluster, ClusterSpec, Node, eventually, testenv_bin_dir};

fn iptables_save() -> String {
    Command::new("iptables-save")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

#[test]
fn nodes_run_their_services_as_systemd_would_and_leave_nothing_behind() -> Result<()> {
    testenv_bin_dir()?;
    let host_iptables = iptables_save();
    let inotify_before = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")?;
    let cluster = Cluster::create(ClusterSpec::new("testenv-nodes", 1, 1).owned_by_this_process())?;
    let record = cluster.record().clone();
    let result = check_nodes(&cluster);
    let diagnostics = cluster
        .nodes()
        .iter()
        .map(Node::diagnostics)
        .collect::<Vec<_>>()
        .join("\n");
    result.with_context(|| diagnostics)?;

    cluster.delete()?;
    let left = leftovers(&record)?;
    ensure!(left.is_empty(), "after delete: {left:?}");
    ensure!(
        iptables_save() == host_iptables,
        "the host's iptables changed"
    );
    let others_alive = cluster::list()?.iter().any(|c| c.alive());
    if !others_alive {
        let inotify = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")?;
        ensure!(
            inotify == inotify_before,
            "fs.inotify.max_user_instances is {inotify} after the last cluster, {inotify_before} before"
        );
    }
    Ok(())
}

fn check_nodes(cluster: &Cluster) -> Result<()> {
    let cp = cluster.node("testenv-nodes-control-plane")?;
    let worker = cluster.node("testenv-nodes-worker")?;

    // Names, addresses and cgroup roots of their own.
    ensure!(cp.run(&["hostname"])?.trim() == cp.name);
    ensure!(worker.run(&["hostname"])?.trim() == worker.name);
    ensure!(cp.address != worker.address);
    let defaults = cp.read("/etc/default/kubelet")?;
    ensure!(
        defaults.contains("--cgroup-root=/kubeforge-testenv-nodes-control-plane"),
        "{defaults}"
    );
    ensure!(
        !std::path::Path::new("/etc/default/kubelet").exists()
            || std::fs::read_to_string("/etc/default/kubelet")? != defaults,
        "a node's /etc is its own"
    );
    let fs_inotify: u64 = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")?
        .trim()
        .parse()?;
    ensure!(
        fs_inotify >= 512,
        "fs.inotify.max_user_instances is {fs_inotify} while a cluster runs"
    );

    // kubeadm's images are there, under kubeadm's names, and nothing needs pulling.
    let images = cp.run(&["ctr", "--namespace=k8s.io", "images", "ls", "-q"])?;
    for image in kubeforge_testenv::image_names(&testenv_bin_dir()?)? {
        ensure!(
            images.lines().any(|l| l == image),
            "{image} is not in the node's containerd:\n{images}"
        );
    }

    // systemctl as kubeadm reads it.
    let (_, status) = cp.systemctl(&["status", "kubelet"])?;
    ensure!(
        status.contains("Loaded: loaded") && status.contains("enabled"),
        "{status}"
    );
    // No config yet, so the kubelet crash-loops: between two of its runs (each lives a few
    // hundred milliseconds), systemd's auto-restart state.
    eventually(
        "the kubelet crash-looping in auto-restart",
        Duration::from_secs(10),
        || {
            let (code, status) = cp.systemctl(&["status", "kubelet"])?;
            Ok((code == 3 && status.contains("activating (auto-restart)")).then_some(()))
        },
    )?;
    ensure!(cp.systemctl(&["is-enabled", "kubelet"])? == (0, "enabled\n".to_string()));
    ensure!(cp.systemctl(&["is-active", "containerd"])? == (0, "active\n".to_string()));
    ensure!(cp.systemctl(&["is-active", "systemd-resolved"])? == (3, "inactive\n".to_string()));
    let (code, out) = cp.systemctl(&["status", "firewalld"])?;
    ensure!(
        code == 4 && out.contains("could not be found"),
        "{code} {out}"
    );
    ensure!(cp.systemctl(&["start", "nosuch.service"])?.0 == 5);
    // …and from inside the node, through the `systemctl` in its PATH.
    let inside = cp.output(&["systemctl", "is-active", "containerd"])?;
    ensure!(
        inside.status.code() == Some(0) && String::from_utf8_lossy(&inside.stdout) == "active\n"
    );
    let log = cp.log("kubelet");
    ensure!(
        log.contains("--cgroup-root=/kubeforge-testenv-nodes-control-plane")
            && log.contains("failed to load kubelet config file"),
        "the kubelet's log shows its command line and why it exits:\n{}",
        cp.log_tail("kubelet", 10)
    );

    // A killed containerd is restarted (RestartSec=5) and keeps its images.
    let before = cp.main_pid("containerd")?.context("containerd runs")?;
    cp.systemctl(&["kill", "--signal=KILL", "containerd"])?;
    let after = eventually("containerd restarted", Duration::from_secs(20), || {
        Ok(cp.main_pid("containerd")?.filter(|pid| *pid != before))
    })?;
    ensure!(after != before);
    eventually("containerd answers", Duration::from_secs(10), || {
        Ok(cp
            .output(&["ctr", "--namespace=k8s.io", "images", "ls", "-q"])?
            .status
            .success()
            .then_some(()))
    })?;
    // stop is final; start again.
    cp.systemctl(&["stop", "kubelet"])?;
    ensure!(cp.systemctl(&["is-active", "kubelet"])?.1 == "inactive\n");
    std::thread::sleep(Duration::from_secs(2));
    ensure!(
        cp.systemctl(&["is-active", "kubelet"])?.1 == "inactive\n",
        "a stopped kubelet stays stopped"
    );
    cp.systemctl(&["start", "kubelet"])?;
    ensure!(cp.systemctl(&["is-active", "kubelet"])?.0 != 0 || cp.main_pid("kubelet")?.is_some());

    // The nodes reach each other and the host reaches them: a TCP server on the worker.
    let agnhost = testenv_bin_dir()?.join("agnhost");
    let agnhost = std::fs::canonicalize(&agnhost)?;
    let mut server = worker
        .command(&[
            agnhost.as_os_str(),
            "netexec".as_ref(),
            "--http-port=8080".as_ref(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let target = format!("{}:8080", worker.address);
    let reached = eventually(
        "the worker's server answers the control plane",
        Duration::from_secs(15),
        || {
            Ok(cp
                .output(&[
                    agnhost.to_str().unwrap(),
                    "connect",
                    &target,
                    "--timeout=1s",
                ])?
                .status
                .success()
                .then_some(()))
        },
    );
    let from_host = eventually(
        "the worker's server answers the host",
        Duration::from_secs(5),
        || {
            Ok(
                std::net::TcpStream::connect_timeout(&target.parse()?, Duration::from_secs(1))
                    .ok()
                    .map(|_| ()),
            )
        },
    );
    let _ = server.kill();
    let _ = server.wait();
    reached?;
    from_host?;

    // The CLI over the same library.
    let cli = env!("CARGO_BIN_EXE_kubeforge-testenv");
    let nodes = Command::new(cli)
        .args(["nodes", "testenv-nodes"])
        .output()?;
    let nodes = String::from_utf8_lossy(&nodes.stdout);
    ensure!(
        nodes.contains(&cp.name)
            && nodes.contains(&cp.address.to_string())
            && nodes.contains(&worker.address.to_string()),
        "{nodes}"
    );
    let mut exec = Command::new(cli)
        .args([
            "exec",
            &worker.name,
            "--",
            "sh",
            "-c",
            "read line; echo \"$(hostname) got $line\"; exit 3",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    exec.stdin.take().unwrap().write_all(b"hello\n")?;
    let out = exec.wait_with_output()?;
    ensure!(
        out.status.code() == Some(3),
        "exec passes the exit code: {:?}",
        out.status
    );
    ensure!(String::from_utf8_lossy(&out.stdout) == format!("{} got hello\n", worker.name));
    let logs = Command::new(cli)
        .args(["logs", &cp.name, "containerd"])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&logs.stdout).contains("containerd successfully booted"),
        "logs NODE containerd"
    );
    Ok(())
}

/// A cluster ends with the process that owns it (a test killed mid-run): its nodes and lab shut
/// themselves down, and the next create removes what is left.
#[test]
fn a_cluster_ends_with_its_owner_and_the_next_create_removes_the_rest() -> Result<()> {
    testenv_bin_dir()?;
    let mut owner = Command::new("sleep").arg("600").spawn()?;
    let owner_id = ProcessId::of(owner.id() as i32).context("sleep runs")?;
    let mut spec = ClusterSpec::new("testenv-owner", 1, 0);
    spec.owner = Some(owner_id);
    let cluster = Cluster::create(spec)?;
    let record = cluster.record().clone();
    let node = cluster.node("testenv-owner-control-plane")?;
    ensure!(node.running());
    drop(cluster); // a test's Cluster deletes itself when dropped; this one must go by itself
    owner.kill()?;
    owner.wait()?;
    eventually(
        "the node and the lab exit with their owner",
        Duration::from_secs(30),
        || Ok((!node.running() && !record.lab.alive()).then_some(())),
    )?;
    let left = leftovers(&record)?;
    ensure!(
        left.iter().all(|l| l.starts_with("directory")),
        "only the directory waits for the next create: {left:?}"
    );
    // The next create (or delete) collects it. It may reuse the dead cluster's subnet index
    // and so its interface's name: the directory and the record tell.
    let other =
        Cluster::create(ClusterSpec::new("testenv-owner-next", 1, 0).owned_by_this_process())?;
    ensure!(
        !kubeforge_testenv::state::ClusterRecord::dir("testenv-owner").exists(),
        "the next create removed the dead cluster's directory"
    );
    ensure!(cluster::list()?.iter().all(|c| c.name != "testenv-owner"));
    other.delete()
}
