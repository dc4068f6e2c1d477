//! `kubeforge-testenv`: clusters of real nodes on this machine, by hand.
//!
//! ```text
//! kubeforge-testenv cluster create [NAME] [--control-planes N] [--workers N] [--kubeforge PATH]
//! kubeforge-testenv cluster list
//! kubeforge-testenv cluster delete NAME | --all
//! kubeforge-testenv nodes [CLUSTER]
//! kubeforge-testenv exec NODE -- COMMAND [ARGS…]
//! kubeforge-testenv logs NODE [kubelet|containerd|supervisor] [--pod NAMESPACE/POD/CONTAINER]
//! kubeforge-testenv wait [CLUSTER] [--timeout SECONDS]
//! kubeforge-testenv kubeconfig [CLUSTER]
//! kubeforge-testenv bin-dir
//! ```
//!
//! Called as `systemctl` (the link in every node's /usr/local/bin) it is the node's systemctl.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use kubeforge_testenv::state::{ClusterRecord, ProcessId};
use kubeforge_testenv::supervisor::{self, NodeArgs};
use kubeforge_testenv::{
    Cluster, ClusterSpec, Node, cluster, lab, testenv_bin_dir, testenv_bin_dir_for, testenv_exe,
};

const DEFAULT_CLUSTER: &str = "kubeforge";

#[derive(Parser)]
#[command(
    name = "kubeforge-testenv",
    about = "Clusters of real nodes (namespaces with their own containerd and kubelet) on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create, list and delete clusters.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// The nodes of a cluster: name, role, address, pod subnet, state.
    Nodes {
        #[arg(default_value = DEFAULT_CLUSTER)]
        cluster: String,
    },
    /// Run a command inside a node, like `docker exec` (stdin, stdout and exit code are the
    /// command's).
    Exec {
        node: String,
        /// The cluster the node is in (default: the one live cluster that has it).
        #[arg(long)]
        cluster: Option<String>,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show a node's log: a service's (kubelet, containerd), the supervisor's, or a container's.
    Logs {
        node: String,
        #[arg(default_value = "kubelet")]
        unit: String,
        /// A container's log instead: NAMESPACE/POD/CONTAINER (POD a name prefix).
        #[arg(long)]
        pod: Option<String>,
        #[arg(long)]
        cluster: Option<String>,
    },
    /// Wait until every node is a Ready Node and every kube-system Pod is Running and Ready.
    Wait {
        #[arg(default_value = DEFAULT_CLUSTER)]
        cluster: String,
        /// Seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
    /// Print the path of a kubeconfig for the host with the cluster's admin credentials.
    Kubeconfig {
        #[arg(default_value = DEFAULT_CLUSTER)]
        cluster: String,
    },
    /// Build (if needed) and print the test env's bin dir.
    BinDir {
        /// A Kubernetes release other than the default, e.g. v1.36.3.
        kubernetes_version: Option<String>,
    },
    /// (internal) a node's start, in its new namespaces.
    #[command(hide = true)]
    NodeBoot(NodeArgsCli),
    /// (internal) a node's PID 1.
    #[command(hide = true)]
    NodeSupervisor(NodeArgsCli),
    /// (internal) a cluster's network namespace.
    #[command(hide = true)]
    Lab {
        #[arg(long)]
        cluster: String,
        #[arg(long)]
        owner: Option<String>,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Create a cluster of nodes named as kind names them (NAME-control-plane, NAME-worker, …).
    Create {
        #[arg(default_value = DEFAULT_CLUSTER)]
        name: String,
        #[arg(long, default_value_t = 1)]
        control_planes: usize,
        #[arg(long, default_value_t = 0)]
        workers: usize,
        /// A kubeforge binary to put in every node's PATH.
        #[arg(long)]
        kubeforge: Option<PathBuf>,
        /// The Kubernetes release of the nodes' kubelet, kubeadm and images, e.g. v1.36.3
        /// [default: the test env's default release].
        #[arg(long, value_name = "VERSION")]
        kubernetes_version: Option<String>,
    },
    /// List the clusters.
    List,
    /// Delete a cluster (and remove what dead clusters left).
    Delete {
        #[arg(required_unless_present = "all")]
        name: Option<String>,
        /// Delete every cluster.
        #[arg(long)]
        all: bool,
    },
}

#[derive(clap::Args)]
struct NodeArgsCli {
    #[arg(long)]
    node_dir: PathBuf,
    #[arg(long)]
    hostname: String,
    #[arg(long)]
    cgroup: String,
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    owner_fd: Option<i32>,
}

impl NodeArgsCli {
    fn into_args(self) -> Result<NodeArgs> {
        Ok(NodeArgs {
            node_dir: self.node_dir,
            hostname: self.hostname,
            cgroup: self.cgroup,
            owner: self
                .owner
                .as_deref()
                .map(ProcessId::parse_arg)
                .transpose()?,
            owner_fd: self.owner_fd,
        })
    }
}

fn main() {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    if std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "systemctl")
    {
        let rest: Vec<String> = args.collect();
        kubeforge_testenv::systemctl::main(&rest);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(Cli::parse()) {
        eprintln!("kubeforge-testenv: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Cluster(ClusterCmd::Create {
            name,
            control_planes,
            workers,
            kubeforge,
            kubernetes_version,
        }) => {
            let mut spec = ClusterSpec::new(&name, control_planes, workers);
            spec.kubeforge = kubeforge;
            if let Some(version) = &kubernetes_version {
                spec = spec.with_kubernetes_version(version)?;
            }
            let started = std::time::Instant::now();
            let cluster = Cluster::create(spec)?;
            eprintln!(
                "Created cluster {name} in {:.1}s. Run a command on a node: kubeforge-testenv exec {} -- COMMAND",
                started.elapsed().as_secs_f64(),
                cluster.nodes()[0].name
            );
            print_nodes(&cluster.nodes());
        }
        Cmd::Cluster(ClusterCmd::List) => {
            println!("{:<24} {:<8} {:<6} NODES", "NAME", "STATE", "INDEX");
            for record in cluster::list()? {
                let state = if record.alive() { "running" } else { "dead" };
                let nodes: Vec<&str> = record.nodes.iter().map(|n| n.name.as_str()).collect();
                println!(
                    "{:<24} {:<8} {:<6} {}",
                    record.name,
                    state,
                    record.index,
                    nodes.join(",")
                );
            }
        }
        Cmd::Cluster(ClusterCmd::Delete { name, all }) => {
            let names = if all {
                ClusterRecord::names()?
            } else {
                vec![name.unwrap()]
            };
            for name in names {
                if cluster::delete(&name)? {
                    eprintln!("Deleted cluster {name}");
                } else {
                    eprintln!("No cluster {name}; removed what dead clusters left");
                }
            }
        }
        Cmd::Nodes { cluster } => print_nodes(&Cluster::get(&cluster)?.nodes()),
        Cmd::Exec {
            node,
            cluster,
            command,
        } => {
            let node = find_node(&node, cluster.as_deref())?;
            let error = node.command(&command).stdin(Stdio::inherit()).exec();
            bail!("running {:?} in node {}: {error}", command, node.name);
        }
        Cmd::Logs {
            node,
            unit,
            pod,
            cluster,
        } => {
            let node = find_node(&node, cluster.as_deref())?;
            let text = match pod {
                Some(pod) => {
                    let parts: Vec<&str> = pod.splitn(3, '/').collect();
                    let [namespace, pod, container] = parts[..] else {
                        bail!("--pod {pod:?}: give NAMESPACE/POD/CONTAINER");
                    };
                    node.container_log(namespace, pod, container)?
                }
                None if unit == "supervisor" => node.supervisor_log(),
                None => node.log(&unit),
            };
            print!("{text}");
        }
        Cmd::Wait { cluster, timeout } => {
            let took =
                Cluster::get(&cluster)?.wait_ready(std::time::Duration::from_secs(timeout))?;
            eprintln!(
                "Cluster {cluster} is ready: every node Ready, every kube-system Pod Running and Ready ({:.1}s)",
                took.as_secs_f64()
            );
        }
        Cmd::Kubeconfig { cluster } => {
            println!("{}", Cluster::get(&cluster)?.kubeconfig()?.display())
        }
        Cmd::BinDir { kubernetes_version } => {
            let dir = match kubernetes_version {
                Some(version) => testenv_bin_dir_for(&version)?,
                None => testenv_bin_dir()?,
            };
            println!("{}", dir.display());
        }
        Cmd::NodeBoot(args) => {
            let code = supervisor::boot(&testenv_exe()?, &args.into_args()?)?;
            std::process::exit(code);
        }
        Cmd::NodeSupervisor(args) => supervisor::run(args.into_args()?)?,
        Cmd::Lab { cluster, owner } => lab::run(
            &cluster,
            owner.as_deref().map(ProcessId::parse_arg).transpose()?,
        )?,
    }
    Ok(())
}

/// The nodes, with the host pid of each one's supervisor: its file system is
/// /proc/<pid>/root, and `nsenter -t <pid>` enters it.
fn print_nodes(nodes: &[Node]) {
    println!(
        "{:<32} {:<14} {:<14} {:<16} {:<8} STATE",
        "NODE", "ROLE", "ADDRESS", "POD SUBNET", "PID"
    );
    for node in nodes {
        let state = if node.running() { "running" } else { "stopped" };
        println!(
            "{:<32} {:<14} {:<14} {:<16} {:<8} {state}",
            node.name,
            node.role.as_str(),
            node.address.to_string(),
            node.pod_subnet,
            node.supervisor().pid
        );
    }
}

/// The node `name` of `cluster`, or of the one live cluster that has such a node.
fn find_node(name: &str, cluster: Option<&str>) -> Result<Node> {
    if let Some(cluster) = cluster {
        return Cluster::get(cluster)?.node(name);
    }
    let mut found = Vec::new();
    for record in cluster::list()?.into_iter().filter(|r| r.alive()) {
        if record.nodes.iter().any(|n| n.name == name) {
            found.push(record.name);
        }
    }
    match found.as_slice() {
        [one] => Cluster::get(one)?.node(name),
        [] => bail!("no live cluster has a node {name:?} (`kubeforge-testenv cluster list`)"),
        many => bail!(
            "clusters {} all have a node {name:?}; say which with --cluster",
            many.join(", ")
        ),
    }
    .context("finding the node")
}
