//! Clusters of nodes on this machine: create, find, grow, delete, and clean up what a killed
//! run left.
//!
//! A node is what a kind node is, without Docker: a supervisor ([`crate::supervisor`]) as PID 1
//! of new network, mount, UTS and PID namespaces, with its own /etc overlay, /var/lib, /var/log,
//! /run and /usr/local/bin, its own containerd and the real kubelet, an address on the cluster's
//! bridge ([`crate::network`]) and a cgroup root of its own ([`crate::cgroups`]). Creating a
//! node writes the files a machine prepared for kubeadm has (containerd's config, a CNI
//! network, /etc/default/kubelet), plugs in its network, boots containerd and the kubelet (which
//! waits, restarting, for kubeadm or kubeforge to give it a configuration, as on a machine) and
//! imports the test env's images.
//!
//! A cluster made with an owner (a test) ends with it: its nodes and its lab shut down when the
//! owner exits, however it exits. The next create or delete removes what is left of any dead
//! cluster — processes, cgroups, interfaces, directories — and puts the kernel settings back
//! when no cluster remains.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::binaries::{NODE_BINARIES, image_names, images_tar, testenv_bin_dir, testenv_exe};
use crate::node::{Node, Role};
use crate::state::{
    ClusterRecord, NodeRecord, ProcessId, StateLock, check_name, remove_tree, state_root,
};
use crate::supervisor::{BIN, NODE_NAMESPACES, NodeArgs, in_new_namespaces};
use crate::{cgroups, config, network, sysctls};

/// How many clusters may exist at once (each takes a /24 of 10.77.0.0/16).
const MAX_CLUSTERS: u8 = 200;

/// A node to create.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
}

/// A cluster to create.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub name: String,
    pub nodes: Vec<NodeSpec>,
    /// The process whose exit ends the cluster (None: it lives until deleted).
    pub owner: Option<ProcessId>,
    /// A kubeforge executable to put in every node's PATH as `kubeforge`.
    pub kubeforge: Option<PathBuf>,
    /// The test env's bin dir, which picks the Kubernetes release of the nodes' kubelet,
    /// kubeadm and images (default: [`testenv_bin_dir`], the default release's;
    /// [`crate::testenv_bin_dir_for`] another's).
    pub bin_dir: Option<PathBuf>,
}

impl ClusterSpec {
    /// A cluster `name` with `control_planes` and `workers` nodes named as kind names them:
    /// `<name>-control-plane`, `<name>-control-plane2`, …, `<name>-worker`, `<name>-worker2`, ….
    pub fn new(name: &str, control_planes: usize, workers: usize) -> ClusterSpec {
        let mut nodes = Vec::new();
        for (role, count) in [
            (Role::ControlPlane, control_planes),
            (Role::Worker, workers),
        ] {
            for i in 1..=count {
                nodes.push(node_spec(name, role, i));
            }
        }
        ClusterSpec {
            name: name.to_string(),
            nodes,
            owner: None,
            kubeforge: None,
            bin_dir: None,
        }
    }

    /// A cluster that ends with this process (a test).
    pub fn owned_by_this_process(mut self) -> ClusterSpec {
        self.owner = Some(ProcessId::current());
        self
    }

    pub fn with_kubeforge(mut self, kubeforge: impl Into<PathBuf>) -> ClusterSpec {
        self.kubeforge = Some(kubeforge.into());
        self
    }

    /// Nodes of the Kubernetes release `version` (its kubelet, kubeadm and images).
    pub fn with_kubernetes_version(mut self, version: &str) -> Result<ClusterSpec> {
        self.bin_dir = Some(crate::testenv_bin_dir_for(version)?);
        Ok(self)
    }
}

/// The spec of the `i`-th (1-based) node of `role` in cluster `cluster`, named as kind does.
pub fn node_spec(cluster: &str, role: Role, i: usize) -> NodeSpec {
    let suffix = if i == 1 { String::new() } else { i.to_string() };
    NodeSpec {
        name: format!("{cluster}-{}{suffix}", role.as_str()),
        role,
    }
}

/// A cluster that exists. Dropping it deletes it when it was created with an owner (a test's
/// cluster); one found by name is left alone.
pub struct Cluster {
    record: ClusterRecord,
    /// Resolved when first needed: finding a node or running a command in it does not.
    bin_dir: Option<PathBuf>,
    kubeforge: Option<PathBuf>,
    delete_on_drop: bool,
}

impl Cluster {
    /// Creates the cluster and its nodes. Dead clusters are removed first; a live cluster of
    /// the same name is an error.
    pub fn create(spec: ClusterSpec) -> Result<Cluster> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            bail!(
                "the test env's nodes need root (network, mount and PID namespaces, mounts, cgroups); run as root"
            );
        }
        check_name("cluster", &spec.name)?;
        for node in &spec.nodes {
            check_name("node", &node.name)?;
        }
        let bin_dir = match &spec.bin_dir {
            Some(dir) => dir.clone(),
            None => testenv_bin_dir()?,
        };
        let exe = testenv_exe()?;
        let _lock = StateLock::acquire()?;
        collect_garbage()?;
        if ClusterRecord::load(&spec.name)?.is_some() {
            bail!(
                "cluster {:?} exists; delete it with `kubeforge-testenv cluster delete {}`",
                spec.name,
                spec.name
            );
        }
        let index = free_index()?;
        let dir = ClusterRecord::dir(&spec.name);
        remove_tree(&dir)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        sysctls::acquire()?;
        let lab = start_lab(&exe, &spec.name, &dir, spec.owner)?;
        let record = ClusterRecord {
            name: spec.name.clone(),
            index,
            owner: spec.owner,
            lab,
            nodes: Vec::new(),
            bin_dir: Some(bin_dir.clone()),
        };
        record.save()?;
        let mut cluster = Cluster {
            record,
            bin_dir: Some(bin_dir),
            kubeforge: spec.kubeforge.clone(),
            delete_on_drop: spec.owner == Some(ProcessId::current()),
        };
        let created = network::create_lab(index, lab.pid).and_then(|()| {
            spec.nodes
                .iter()
                .try_for_each(|node| cluster.create_node(&exe, node).map(|_| ()))
        });
        if let Err(e) = created {
            let diagnostics = cluster
                .nodes()
                .iter()
                .map(|n| format!("{}\n{}", n.supervisor_log(), n.diagnostics()))
                .collect::<Vec<_>>()
                .join("\n");
            let _ = teardown(&cluster.record);
            cluster.delete_on_drop = false;
            return Err(e.context(format!("creating cluster {}\n{diagnostics}", spec.name)));
        }
        Ok(cluster)
    }

    /// The live cluster `name`.
    pub fn get(name: &str) -> Result<Cluster> {
        let record = ClusterRecord::load(name)?.with_context(|| {
            format!("no cluster {name:?} (`kubeforge-testenv cluster list` lists them)")
        })?;
        if !record.alive() {
            bail!(
                "cluster {name:?} is gone (its lab or owner exited); `kubeforge-testenv cluster delete {name}` removes what is left"
            );
        }
        Ok(Cluster {
            bin_dir: record.bin_dir.clone(),
            record,
            kubeforge: None,
            delete_on_drop: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.record.name
    }

    /// What the state root records about the cluster.
    pub fn record(&self) -> &ClusterRecord {
        &self.record
    }

    /// The test env's bin dir.
    pub fn bin_dir(&self) -> Result<PathBuf> {
        match &self.bin_dir {
            Some(dir) => Ok(dir.clone()),
            None => testenv_bin_dir(),
        }
    }

    /// The cluster's gateway on its bridge (where a load balancer listens).
    pub fn gateway(&self) -> std::net::Ipv4Addr {
        network::gateway(self.record.index)
    }

    pub fn nodes(&self) -> Vec<Node> {
        self.record
            .nodes
            .iter()
            .map(|n| Node::from_record(&self.record, n))
            .collect()
    }

    pub fn node(&self, name: &str) -> Result<Node> {
        self.nodes()
            .into_iter()
            .find(|n| n.name == name)
            .with_context(|| {
                format!(
                    "cluster {} has no node {name:?} (it has {})",
                    self.record.name,
                    self.nodes()
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }

    /// Adds a node (`kubeforge-testenv` names it as [`node_spec`] does when given a role only).
    pub fn add_node(&mut self, spec: &NodeSpec) -> Result<Node> {
        check_name("node", &spec.name)?;
        let exe = testenv_exe()?;
        let _lock = StateLock::acquire()?;
        self.create_node(&exe, spec)
    }

    /// A kubeconfig for the host with the cluster's admin credentials: `/etc/kubernetes/
    /// admin.conf` of the first control-plane node, copied to `<cluster dir>/kubeconfig`.
    pub fn kubeconfig(&self) -> Result<PathBuf> {
        let node = self
            .nodes()
            .into_iter()
            .find(|n| n.role == Role::ControlPlane)
            .context("the cluster has no control-plane node")?;
        let admin = node.read("/etc/kubernetes/admin.conf")?;
        let path = ClusterRecord::dir(&self.record.name).join("kubeconfig");
        std::fs::write(&path, admin).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Runs the test env's kubectl on the host with [`Cluster::kubeconfig`]; returns its stdout.
    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        let kubeconfig = self.kubeconfig()?;
        let output = Command::new(self.bin_dir()?.join("kubectl"))
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running kubectl")?;
        if !output.status.success() {
            bail!(
                "kubectl {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Waits until every node of the cluster is a Ready Node, every Deployment and DaemonSet in
    /// kube-system has all its Pods Ready, and every Pod in kube-system is Running and Ready (CoreDNS Ready needs the pod network, kube-proxy's Service routing to
    /// the API server, and DNS itself). Returns how long it took; on timeout, what was not
    /// ready and each node's kubelet and containerd log tails.
    pub fn wait_ready(&self, timeout: Duration) -> Result<Duration> {
        let started = Instant::now();
        let mut waiting_for = Vec::new();
        let ready = crate::eventually("", timeout, || {
            waiting_for = self.not_ready().unwrap_or_else(|e| vec![format!("{e:#}")]);
            Ok(waiting_for.is_empty().then_some(()))
        });
        if ready.is_err() {
            let diagnostics: Vec<String> = self.nodes().iter().map(Node::diagnostics).collect();
            bail!(
                "cluster {} not ready within {timeout:?}; waiting for: {}\n{}",
                self.record.name,
                waiting_for.join("; "),
                diagnostics.join("\n")
            );
        }
        Ok(started.elapsed())
    }

    /// What [`Cluster::wait_ready`] still waits for.
    fn not_ready(&self) -> Result<Vec<String>> {
        let ready = |item: &serde_json::Value| {
            item["status"]["conditions"].as_array().is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
        };
        let mut waiting = Vec::new();
        let nodes: serde_json::Value =
            serde_json::from_str(&self.kubectl(&["get", "nodes", "-o", "json"])?)?;
        for node in self.nodes() {
            let item = nodes["items"].as_array().and_then(|items| {
                items
                    .iter()
                    .find(|i| i["metadata"]["name"] == node.name.as_str())
            });
            match item {
                None => waiting.push(format!("Node {} to register", node.name)),
                Some(item) if !ready(item) => {
                    waiting.push(format!("Node {} to be Ready", node.name))
                }
                Some(_) => {}
            }
        }
        // The workloads first: right after init a Deployment's Pods may not exist yet.
        let workloads: serde_json::Value = serde_json::from_str(&self.kubectl(&[
            "get",
            "deployments,daemonsets",
            "-n",
            "kube-system",
            "-o",
            "json",
        ])?)?;
        for workload in workloads["items"].as_array().into_iter().flatten() {
            let status = &workload["status"];
            let (want, have) = if workload["kind"] == "DaemonSet" {
                (&status["desiredNumberScheduled"], &status["numberReady"])
            } else {
                (&workload["spec"]["replicas"], &status["readyReplicas"])
            };
            let (want, have) = (want.as_u64().unwrap_or(0), have.as_u64().unwrap_or(0));
            if want == 0 || have < want {
                waiting.push(format!(
                    "{} {} ({have}/{want} ready)",
                    workload["kind"].as_str().unwrap_or("?"),
                    workload["metadata"]["name"].as_str().unwrap_or("?")
                ));
            }
        }
        let pods: serde_json::Value = serde_json::from_str(&self.kubectl(&[
            "get",
            "pods",
            "-n",
            "kube-system",
            "-o",
            "json",
        ])?)?;
        let pods = pods["items"].as_array().cloned().unwrap_or_default();
        if pods.is_empty() {
            waiting.push("Pods in kube-system".to_string());
        }
        for pod in pods {
            if pod["status"]["phase"] != "Running" || !ready(&pod) {
                waiting.push(format!(
                    "Pod {} ({})",
                    pod["metadata"]["name"].as_str().unwrap_or("?"),
                    pod["status"]["phase"].as_str().unwrap_or("?")
                ));
            }
        }
        Ok(waiting)
    }

    /// Deletes the cluster: its nodes shut down, its lab exits, everything it made is removed.
    pub fn delete(mut self) -> Result<()> {
        self.delete_on_drop = false;
        let _lock = StateLock::acquire()?;
        teardown(&self.record)
    }

    fn create_node(&mut self, exe: &Path, spec: &NodeSpec) -> Result<Node> {
        if self.record.nodes.iter().any(|n| n.name == spec.name) {
            bail!(
                "cluster {} already has a node {}",
                self.record.name,
                spec.name
            );
        }
        let ordinal = (0..=u8::MAX - 12)
            .find(|o| !self.record.nodes.iter().any(|n| n.ordinal == *o))
            .context("no free node ordinal")?;
        let dir = ClusterRecord::dir(&self.record.name).join(&spec.name);
        remove_tree(&dir)?;
        self.link_binaries(exe, &dir.join(BIN))?;
        // Unique on the machine: kind-style names already carry the cluster's.
        let cgroup = if spec.name.starts_with(&format!("{}-", self.record.name)) {
            format!("kubeforge-{}", spec.name)
        } else {
            format!("kubeforge-{}-{}", self.record.name, spec.name)
        };
        cgroups::create(&cgroup)?;
        let supervisor = start_node(
            exe,
            &NodeArgs {
                node_dir: dir.clone(),
                hostname: spec.name.clone(),
                cgroup: cgroup.clone(),
                owner: self.record.owner,
                owner_fd: None,
            },
        )?;
        self.record.nodes.push(NodeRecord {
            name: spec.name.clone(),
            role: spec.role,
            ordinal,
            supervisor,
            cgroup: cgroup.clone(),
        });
        self.record.save()?;
        let node = Node::from_record(&self.record, self.record.nodes.last().unwrap());
        node.wait_supervisor(Duration::from_secs(30))?;
        self.prepare(&node, &cgroup)?;
        network::attach_node(
            self.record.index,
            ordinal,
            self.record.lab.pid,
            supervisor.pid,
        )?;
        for other in self.nodes().iter().filter(|n| n.name != node.name) {
            network::route_pods(self.record.index, node.supervisor().pid, other.ordinal)?;
            network::route_pods(self.record.index, other.supervisor().pid, ordinal)?;
        }
        let (code, output) = node.supervisor_request("boot")?;
        if code != 0 {
            bail!(
                "booting node {}: {output}\n{}",
                node.name,
                node.diagnostics()
            );
        }
        self.import_images(&node)?;
        Ok(node)
    }

    /// The node's /usr/local/bin: the test env's node binaries, `systemctl` (this executable,
    /// which answers to that name) and `kubeforge` when given.
    fn link_binaries(&self, exe: &Path, bin: &Path) -> Result<()> {
        std::fs::create_dir_all(bin).with_context(|| format!("creating {}", bin.display()))?;
        let bin_dir = self.bin_dir()?;
        let mut links: Vec<(String, PathBuf)> = NODE_BINARIES
            .iter()
            .map(|b| (b.to_string(), bin_dir.join(b)))
            .collect();
        links.push(("systemctl".to_string(), exe.to_path_buf()));
        if let Some(kubeforge) = &self.kubeforge {
            links.push((
                "kubeforge".to_string(),
                std::path::absolute(kubeforge)
                    .with_context(|| format!("locating {}", kubeforge.display()))?,
            ));
        }
        for (name, target) in links {
            let target = std::fs::canonicalize(&target)
                .with_context(|| format!("{} (for the node's {name})", target.display()))?;
            std::os::unix::fs::symlink(&target, bin.join(&name))
                .with_context(|| format!("linking {}", bin.join(&name).display()))?;
        }
        Ok(())
    }

    /// The files a machine prepared for kubeadm has before `kubeadm init` or `join`.
    fn prepare(&self, node: &Node, cgroup: &str) -> Result<()> {
        let pause = image_names(&self.bin_dir()?)?
            .into_iter()
            .find(|i| i.starts_with("registry.k8s.io/pause:"))
            .context("the test env's images have no pause image")?;
        node.write(
            "/etc/containerd/config.toml",
            config::containerd_toml(&pause),
        )?;
        node.write(
            "/etc/cni/net.d/10-kubeforge-testenv.conflist",
            config::cni_conflist(node.ordinal),
        )?;
        node.write("/etc/default/kubelet", config::kubelet_defaults(cgroup))?;
        node.write("/etc/machine-id", format!("{}\n", machine_id(&node.name)))?;
        // Name resolution of the node's own name never leaves the node (kubeadm's preflight
        // looks it up).
        let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        node.write(
            "/etc/hosts",
            format!("{hosts}{}\t{}\n", node.address, node.name),
        )
    }

    /// `ctr images import` of the test env's images into the node's containerd (namespace
    /// k8s.io, where the CRI looks), each pinned so the kubelet's image GC never removes it.
    fn import_images(&self, node: &Node) -> Result<()> {
        let bin_dir = self.bin_dir()?;
        let tar = images_tar(&bin_dir);
        let tar = std::fs::canonicalize(&tar).with_context(|| format!("{}", tar.display()))?;
        node.run(&[
            "ctr".as_ref(),
            "--namespace=k8s.io".as_ref(),
            "images".as_ref(),
            "import".as_ref(),
            tar.as_os_str(),
        ])
        .with_context(|| format!("importing images into node {}", node.name))?;
        for image in image_names(&bin_dir)? {
            node.run(&[
                "ctr",
                "--namespace=k8s.io",
                "images",
                "label",
                &image,
                "io.cri-containerd.pinned=pinned",
            ])?;
        }
        Ok(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.delete_on_drop {
            let result = StateLock::acquire().and_then(|_lock| teardown(&self.record));
            if let Err(e) = result {
                eprintln!("deleting cluster {}: {e:#}", self.record.name);
            }
        }
    }
}

/// A machine id (32 hex digits) of the node's own, stable for its name.
fn machine_id(name: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(format!("kubeforge-testenv {name}").as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Every cluster, live or not.
pub fn list() -> Result<Vec<ClusterRecord>> {
    let mut clusters = Vec::new();
    for name in ClusterRecord::names()? {
        if let Some(record) = ClusterRecord::load(&name)? {
            clusters.push(record);
        }
    }
    Ok(clusters)
}

/// Deletes cluster `name`, live or dead.
pub fn delete(name: &str) -> Result<bool> {
    let _lock = StateLock::acquire()?;
    let found = match ClusterRecord::load(name)? {
        Some(record) => {
            teardown(&record)?;
            true
        }
        None => {
            let dir = ClusterRecord::dir(name);
            let existed = dir.exists();
            remove_tree(&dir)?;
            existed
        }
    };
    collect_garbage()?;
    Ok(found)
}

/// Removes every dead cluster (its owner or its lab exited) and what it left. Call under the
/// state lock.
fn collect_garbage() -> Result<()> {
    for name in ClusterRecord::names()? {
        match ClusterRecord::load(&name)? {
            Some(record) if record.alive() => {}
            Some(record) => {
                tracing::info!(cluster = %name, "removing a dead cluster");
                teardown(&record)?;
            }
            None => remove_tree(&ClusterRecord::dir(&name))?,
        }
    }
    sysctls::release_unless_in_use("")
}

/// Shuts the cluster's nodes and lab down and removes everything of it. Call under the state
/// lock.
fn teardown(record: &ClusterRecord) -> Result<()> {
    for node in &record.nodes {
        let handle = Node::from_record(record, node);
        if node.supervisor.alive() {
            if handle.supervisor_request("shutdown").is_err() {
                tracing::debug!(node = %node.name, "no answer to shutdown");
            }
            if !wait_exit(node.supervisor, Duration::from_secs(30)) {
                // Killing PID 1 of the node kills everything in it.
                kill(node.supervisor, libc::SIGKILL);
                wait_exit(node.supervisor, Duration::from_secs(10));
            }
        }
        cgroups::remove(&node.cgroup, Duration::from_secs(20))
            .with_context(|| format!("node {}", node.name))?;
    }
    if record.lab.alive() {
        kill(record.lab, libc::SIGTERM);
        if !wait_exit(record.lab, Duration::from_secs(10)) {
            kill(record.lab, libc::SIGKILL);
            wait_exit(record.lab, Duration::from_secs(5));
        }
    }
    // The host's end goes with the lab's namespace; a lab killed mid-create may not have
    // owned it yet.
    let _ = network::ip(None, &["link", "del", &network::host_link(record.index)]);
    remove_tree(&ClusterRecord::dir(&record.name))?;
    sysctls::release_unless_in_use(&record.name)?;
    let left = leftovers(record)?;
    if !left.is_empty() {
        bail!("cluster {} left behind: {}", record.name, left.join("; "));
    }
    Ok(())
}

/// What of the cluster is still on the machine: its processes, cgroups, host interface,
/// mounts and directory. Empty once it is deleted.
pub fn leftovers(record: &ClusterRecord) -> Result<Vec<String>> {
    let mut left = Vec::new();
    for node in &record.nodes {
        if node.supervisor.alive() {
            left.push(format!("node {} (pid {})", node.name, node.supervisor.pid));
        }
        if cgroups::exists(&node.cgroup)? {
            left.push(format!("cgroup /{}", node.cgroup));
        }
    }
    if record.lab.alive() {
        left.push(format!("the lab (pid {})", record.lab.pid));
    }
    let link = network::host_link(record.index);
    if Path::new("/sys/class/net").join(&link).exists() {
        left.push(format!("network interface {link}"));
    }
    let dir = ClusterRecord::dir(&record.name);
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let dir_text = dir.display().to_string();
    for line in mountinfo.lines() {
        if let Some(mount_point) = line.split(' ').nth(4)
            && mount_point.starts_with(&dir_text)
        {
            left.push(format!("mount {mount_point}"));
        }
    }
    if dir.exists() {
        left.push(format!("directory {}", dir.display()));
    }
    Ok(left)
}

fn kill(process: ProcessId, signal: libc::c_int) {
    if process.alive() {
        // SAFETY: kill of a process checked (pid and start time) to be the one recorded.
        unsafe { libc::kill(process.pid, signal) };
    }
}

fn wait_exit(process: ProcessId, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while process.alive() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// The lowest cluster index no recorded cluster uses.
fn free_index() -> Result<u8> {
    let used: Vec<u8> = list()?.iter().map(|c| c.index).collect();
    (1..=MAX_CLUSTERS)
        .find(|i| !used.contains(i))
        .with_context(|| {
            format!(
                "{MAX_CLUSTERS} clusters exist under {}; delete some",
                state_root().display()
            )
        })
}

/// Starts the lab of cluster `name` in a network namespace of its own.
fn start_lab(exe: &Path, name: &str, dir: &Path, owner: Option<ProcessId>) -> Result<ProcessId> {
    let log = std::fs::File::create(dir.join("lab.log"))?;
    let mut command = Command::new(exe);
    command.args(["lab", "--cluster", name]);
    if let Some(owner) = owner {
        command.args(["--owner", &owner.to_arg()]);
    }
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    in_new_namespaces(&mut command, libc::CLONE_NEWNET);
    let child = command.spawn().context("starting the cluster's lab")?;
    let lab = ProcessId::of(child.id() as i32).context("the lab exited at once; see lab.log")?;
    reap_when_done(child);
    Ok(lab)
}

/// Starts a node's supervisor in new namespaces; returns it as the host sees it.
fn start_node(exe: &Path, args: &NodeArgs) -> Result<ProcessId> {
    std::fs::create_dir_all(&args.node_dir)?;
    let log = std::fs::File::create(args.node_dir.join("supervisor.log"))?;
    let mut command = Command::new(exe);
    command
        .arg("node-boot")
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    in_new_namespaces(&mut command, NODE_NAMESPACES);
    let mut child = command.spawn().context("starting the node")?;
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )?;
    reap_when_done(child);
    let pid: i32 = line.trim().parse().with_context(|| {
        format!(
            "node {} did not start (see {})",
            args.hostname,
            args.node_dir.join("supervisor.log").display()
        )
    })?;
    ProcessId::of(pid).with_context(|| {
        format!(
            "node {} exited at once (see {})",
            args.hostname,
            args.node_dir.join("supervisor.log").display()
        )
    })
}

/// Waits for `child` on a thread of its own, so a long-lived creator (a test) leaves no zombie.
fn reap_when_done(mut child: std::process::Child) {
    std::thread::spawn(move || child.wait());
}
