//! kubeforge's test environment: clusters of real nodes on one machine, like kind's, without
//! Docker.
//!
//! A node is a set of namespaces (network, mount, UTS, PID) with its own address on a bridge
//! the test env creates, its own containerd and the real kubelet, supervised as systemd
//! supervises kubelet.service; a cluster is several nodes on one bridge, reachable from the
//! host. kubeadm and kubeforge run inside a node exactly as on a machine: `systemctl` there
//! stops, starts and restarts the kubelet, and the node's containerd already holds kubeadm's
//! images (built locally by tests/testenv/build.sh), so nothing is pulled.
//!
//! ```no_run
//! use kubeforge_testenv::{Cluster, ClusterSpec, CLUSTER_SETTINGS};
//! # fn main() -> anyhow::Result<()> {
//! // One control-plane node, gone when this process exits (or the cluster is dropped).
//! let cluster = Cluster::create(ClusterSpec::new("demo", 1, 0).owned_by_this_process())?;
//! let node = cluster.node("demo-control-plane")?;
//! node.write("/root/kubeadm.yaml", format!("{}{CLUSTER_SETTINGS}", "…InitConfiguration…"))?;
//! node.run(&["kubeadm", "init", "--config", "/root/kubeadm.yaml"])?;
//! let kubeconfig = cluster.kubeconfig()?; // admin.conf, for the host
//! # Ok(()) }
//! ```
//!
//! The CLI over this library, `kubeforge-testenv` (src/main.rs), creates and deletes clusters,
//! lists nodes, runs commands in a node and shows its logs; `make cluster` uses it.

mod binaries;
pub mod cgroups;
pub mod cluster;
pub mod config;
mod kubeadm;
pub mod lab;
pub mod network;
pub mod node;
pub mod state;
pub mod supervisor;
mod sysctls;
pub mod systemctl;
mod wait;

pub use binaries::{
    BIN_ENV, COMPONENTS, EXE_ENV, build_script, image_names, images_tar, testenv_bin_dir,
    testenv_bin_dir_for, testenv_exe, workspace_exe,
};
pub use cluster::{Cluster, ClusterSpec, NodeSpec, node_spec};
pub use config::CLUSTER_SETTINGS;
pub use kubeadm::kubeadm_init_phases;
pub use node::{Node, Role};
pub use wait::eventually;
