//! A kubeforge cluster on real nodes runs what a user runs on it.
//!
//! Two nodes of the test env (tests/harness: own namespaces, containerd and the real kubelet
//! each): `kubeforge init` on the first, the real `kubeadm join` — with the join command
//! kubeforge printed — on the second. Then, as a user would check: both Nodes Ready and every
//! kube-system Pod Ready; an agnhost Deployment behind a Service answers on its ClusterIP and on
//! its DNS name from another Pod, from both nodes' Pods (pod to pod across nodes); `kubectl
//! exec` and `kubectl logs` work on both nodes (the API server reaches each kubelet on 10250,
//! the kubelet authorises it by SubjectAccessReview); a static Pod restarts when kubeforge
//! rewrites its manifest; a killed kubelet and a killed containerd are restarted and the node
//! runs new Pods again; and deleting the cluster leaves nothing behind and puts back the kernel
//! settings the kubelet changed.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kubeforge_testenv::cluster::{self, leftovers};
use kubeforge_testenv::{CLUSTER_SETTINGS, Cluster, ClusterSpec, Node, eventually};

const CLUSTER: &str = "real-node";

fn config(scheduler_verbosity: Option<&str>) -> String {
    let scheduler = scheduler_verbosity
        .map(|v| format!("scheduler:\n  extraArgs:\n  - name: v\n    value: \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
networking:
  podSubnet: 10.244.0.0/16
{scheduler}{CLUSTER_SETTINGS}"
    )
}

const KERNEL_SETTINGS: [&str; 4] = [
    "kernel/panic",
    "kernel/panic_on_oops",
    "vm/overcommit_memory",
    "fs/inotify/max_user_instances",
];

fn kernel_settings() -> Result<Vec<String>> {
    KERNEL_SETTINGS
        .iter()
        .map(|s| {
            Ok(std::fs::read_to_string(format!("/proc/sys/{s}"))?
                .trim()
                .to_string())
        })
        .collect()
}

#[test]
fn a_kubeforge_cluster_on_real_nodes_runs_workloads() -> Result<()> {
    let settings_before = kernel_settings()?;
    let cluster = Cluster::create(
        ClusterSpec::new(CLUSTER, 1, 1)
            .owned_by_this_process()
            .with_kubeforge(env!("CARGO_BIN_EXE_kubeforge")),
    )?;
    let record = cluster.record().clone();
    let result = check_cluster(&cluster);
    let diagnostics = cluster
        .nodes()
        .iter()
        .map(Node::diagnostics)
        .collect::<Vec<_>>()
        .join("\n");
    result.with_context(|| diagnostics)?;
    let others_alive = || -> Result<bool> {
        Ok(cluster::list()?
            .iter()
            .any(|c| c.name != CLUSTER && c.alive()))
    };
    if !others_alive()? {
        let running = kernel_settings()?;
        ensure!(
            running[0] == "10" && running[1] == "1",
            "the kubelet set kernel.panic=10, panic_on_oops=1: {running:?}"
        );
    }
    cluster.delete()?;
    ensure!(leftovers(&record)?.is_empty());
    if !others_alive()? {
        ensure!(
            kernel_settings()? == settings_before,
            "{KERNEL_SETTINGS:?} are back at {settings_before:?} once no cluster is left"
        );
    }
    Ok(())
}

fn check_cluster(cluster: &Cluster) -> Result<()> {
    let cp = cluster.node(&format!("{CLUSTER}-control-plane"))?;
    let worker = cluster.node(&format!("{CLUSTER}-worker"))?;
    let dir = tempfile::tempdir()?;
    let config_file = dir.path().join("cluster.yaml");
    std::fs::write(&config_file, config(None))?;
    let init = cp.run(&[
        "kubeforge",
        "init",
        "--config",
        config_file.to_str().unwrap(),
    ])?;
    ensure!(
        init.contains("Your Kubernetes control-plane has initialized successfully!"),
        "{init}"
    );

    // The worker joins with the real kubeadm and exactly the join command kubeforge printed.
    let join: Vec<String> = init
        .split("kubeadm join ")
        .nth(1)
        .context("init prints a join command")?
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(str::to_string)
        .collect();
    let mut argv = vec!["kubeadm".to_string(), "join".to_string()];
    argv.extend(join);
    // kubeadm's only objection to this machine: cgroup v1 (SystemVerification).
    argv.push("--ignore-preflight-errors=SystemVerification".to_string());
    worker
        .run(&argv)
        .context("kubeadm join with kubeforge's join command")?;
    cluster.wait_ready(Duration::from_secs(300))?;

    check_service_across_nodes(cluster, &cp, &worker)?;
    check_static_pod_restart(cluster, &cp, dir.path())?;
    check_recovery(cluster, &worker)?;
    Ok(())
}

/// The agnhost web Deployment and its Service.
fn workload(agnhost: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      tolerations:
      - {{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}}
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
          - labelSelector:
              matchLabels: {{app: web}}
            topologyKey: kubernetes.io/hostname
      containers:
      - name: web
        image: {agnhost}
        args: [netexec, --http-port=8080]
        readinessProbe:
          httpGet: {{path: /healthz, port: 8080}}
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports:
  - {{port: 80, targetPort: 8080}}
"#
    )
}

fn client_pod(name: &str, node: &str, agnhost: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  nodeName: {node}
  tolerations:
  - {{key: node-role.kubernetes.io/control-plane, operator: Exists, effect: NoSchedule}}
  containers:
  - name: client
    image: {agnhost}
    args: [netexec, --http-port=8080]
    readinessProbe:
      httpGet: {{path: /healthz, port: 8080}}
"#
    )
}

fn apply(cluster: &Cluster, manifest: &str) -> Result<()> {
    let file = tempfile::NamedTempFile::new()?;
    std::fs::write(file.path(), manifest)?;
    cluster.kubectl(&["apply", "-f", file.path().to_str().unwrap()])?;
    Ok(())
}

/// The hostnames `client` (an agnhost netexec Pod) got back asking `host:port` for its
/// hostname `tries` times, through netexec's /dial — called through the API server's Pod proxy.
fn dial(cluster: &Cluster, client: &str, host: &str, port: u16, tries: u32) -> Result<Vec<String>> {
    let path = format!(
        "/api/v1/namespaces/default/pods/{client}:8080/proxy/dial?request=hostname&protocol=http&host={host}&port={port}&tries={tries}"
    );
    let answer: serde_json::Value =
        serde_json::from_str(&cluster.kubectl(&["get", "--raw", &path])?)?;
    if let Some(errors) = answer["errors"].as_array().filter(|e| !e.is_empty()) {
        bail!("{client} dialing {host}:{port}: {errors:?}");
    }
    Ok(answer["responses"]
        .as_array()
        .context("netexec answers {responses: [...]}")?
        .iter()
        .filter_map(|r| r.as_str().map(str::to_string))
        .collect())
}

/// The e2e test image the nodes have (its tag is the Kubernetes release's own).
fn agnhost_image(cluster: &Cluster) -> Result<String> {
    kubeforge_testenv::image_names(&cluster.bin_dir()?)?
        .into_iter()
        .find(|image| image.contains("/agnhost:"))
        .context("the test env's images include no agnhost")
}

fn check_service_across_nodes(cluster: &Cluster, cp: &Node, worker: &Node) -> Result<()> {
    let agnhost = agnhost_image(cluster)?;
    apply(cluster, &workload(&agnhost))?;
    apply(cluster, &client_pod("client-cp", &cp.name, &agnhost))?;
    apply(
        cluster,
        &client_pod("client-worker", &worker.name, &agnhost),
    )?;
    cluster.kubectl(&["rollout", "status", "deployment/web", "--timeout=180s"])?;
    cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/client-cp",
        "pod/client-worker",
        "--timeout=180s",
    ])?;
    let pods: serde_json::Value =
        serde_json::from_str(&cluster.kubectl(&["get", "pods", "-l", "app=web", "-o", "json"])?)?;
    let web: Vec<(String, String)> = pods["items"]
        .as_array()
        .context("pods")?
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                p["spec"]["nodeName"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    ensure!(
        web.iter().any(|(_, n)| *n == cp.name) && web.iter().any(|(_, n)| *n == worker.name),
        "one web Pod on each node: {web:?}"
    );
    let cluster_ip =
        cluster.kubectl(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])?;
    for client in ["client-cp", "client-worker"] {
        for host in [cluster_ip.as_str(), "web.default.svc.cluster.local"] {
            let answered = eventually(
                &format!("{client} reaches both web Pods at {host}"),
                Duration::from_secs(60),
                || {
                    let names = dial(cluster, client, host, 80, 20)?;
                    Ok(web
                        .iter()
                        .all(|(pod, _)| names.contains(pod))
                        .then_some(names))
                },
            )?;
            ensure!(answered.len() == 20, "{answered:?}");
        }
    }

    // exec and logs through each node's kubelet.
    let on_worker = &web.iter().find(|(_, n)| *n == worker.name).unwrap().0;
    let target = "web.default.svc.cluster.local:80";
    cluster
        .kubectl(&[
            "exec",
            on_worker,
            "--",
            "/agnhost",
            "connect",
            target,
            "--timeout=5s",
        ])
        .context("kubectl exec into the worker's Pod")?;
    cluster
        .kubectl(&[
            "exec",
            "client-cp",
            "--",
            "/agnhost",
            "connect",
            target,
            "--timeout=5s",
        ])
        .context("kubectl exec into the control plane's Pod")?;
    let logs = cluster.kubectl(&["logs", on_worker])?;
    ensure!(
        logs.contains("Started HTTP server on port 8080"),
        "kubectl logs of the worker's Pod:\n{logs}"
    );
    Ok(())
}

/// kube-scheduler's mirror Pod: its config hash and command.
fn scheduler(cluster: &Cluster, cp: &Node) -> Result<(String, Vec<String>, bool)> {
    let pod: serde_json::Value = serde_json::from_str(&cluster.kubectl(&[
        "get",
        "pod",
        "-n",
        "kube-system",
        &format!("kube-scheduler-{}", cp.name),
        "-o",
        "json",
    ])?)?;
    let hash = pod["metadata"]["annotations"]["kubernetes.io/config.hash"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let command = pod["spec"]["containers"][0]["command"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    Ok((hash, command, ready))
}

fn check_static_pod_restart(cluster: &Cluster, cp: &Node, dir: &Path) -> Result<()> {
    let (hash, command, _) = scheduler(cluster, cp)?;
    ensure!(!command.iter().any(|a| a == "--v=4"), "{command:?}");
    let changed = dir.join("scheduler-v4.yaml");
    std::fs::write(&changed, config(Some("4")))?;
    cp.run(&[
        "kubeforge",
        "init",
        "phase",
        "control-plane",
        "scheduler",
        "--config",
        changed.to_str().unwrap(),
    ])?;
    ensure!(
        cp.read("/etc/kubernetes/manifests/kube-scheduler.yaml")?
            .contains("--v=4")
    );
    let (new_hash, new_command) = eventually(
        "the kubelet runs the rewritten kube-scheduler",
        Duration::from_secs(120),
        || {
            let (h, c, ready) = scheduler(cluster, cp)?;
            Ok((h != hash && ready).then_some((h, c)))
        },
    )?;
    ensure!(
        new_hash != hash && new_command.iter().any(|a| a == "--v=4"),
        "{new_command:?}"
    );
    Ok(())
}

fn node_ready(cluster: &Cluster, node: &Node) -> Result<bool> {
    let status = cluster.kubectl(&[
        "get",
        "node",
        &node.name,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
    ])?;
    Ok(status == "True")
}

fn check_recovery(cluster: &Cluster, worker: &Node) -> Result<()> {
    for unit in ["kubelet", "containerd"] {
        let before = worker
            .main_pid(unit)?
            .with_context(|| format!("{unit} runs on the worker"))?;
        worker.systemctl(&["kill", "--signal=KILL", unit])?;
        eventually(
            &format!("the supervisor restarts a killed {unit}"),
            Duration::from_secs(30),
            || Ok(worker.main_pid(unit)?.filter(|pid| *pid != before)),
        )?;
    }
    eventually(
        "the worker's Node is Ready again",
        Duration::from_secs(120),
        || Ok(node_ready(cluster, worker)?.then_some(())),
    )?;
    // The worker runs a new Pod, and its web Pod kept serving through containerd's restart.
    apply(
        cluster,
        &client_pod("after-restarts", &worker.name, &agnhost_image(cluster)?),
    )?;
    cluster.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/after-restarts",
        "--timeout=180s",
    ])?;
    eventually(
        "the worker's web Pod still answers",
        Duration::from_secs(60),
        || {
            let names = dial(
                cluster,
                "after-restarts",
                "web.default.svc.cluster.local",
                80,
                10,
            )?;
            Ok((!names.is_empty()).then_some(()))
        },
    )
}
