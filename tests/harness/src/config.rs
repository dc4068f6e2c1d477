//! The configuration files a node starts with — what a machine prepared for kubeadm has before
//! `kubeadm init` or `join` runs (containerd's config, a CNI network, the kubelet's
//! per-machine flags) — and the settings a cluster on this kind of machine needs in the
//! configuration given to kubeadm or kubeforge.

use crate::network;

/// The KubeletConfiguration and KubeProxyConfiguration settings every cluster of the test env
/// needs, as YAML documents to append to a kubeadm (or kubeforge) configuration file. They are
/// cluster-wide, so they go where an operator puts them, not into kubeforge:
///
/// - `failCgroupV1: false`: kubelet 1.35 refuses a cgroup v1 host (this machine is a v1
///   hybrid) unless told otherwise;
/// - `cgroupDriver: cgroupfs`: there is no systemd to delegate cgroups to (containerd runs
///   runc with `SystemdCgroup = false` to match);
/// - no disk-pressure eviction or image garbage collection (kind's settings): many nodes share
///   one disk, and a test must not lose its locally built images or its Pods because the
///   machine's disk filled up;
/// - kube-proxy's `conntrack.maxPerCore: 0`: nf_conntrack_max is global, and writing it from a
///   node's network namespace fails.
pub const CLUSTER_SETTINGS: &str = "\
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
imageGCHighThresholdPercent: 100
evictionHard:
  nodefs.available: \"0%\"
  nodefs.inodesFree: \"0%\"
  imagefs.available: \"0%\"
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
conntrack:
  maxPerCore: 0
";

/// containerd's `/etc/containerd/config.toml` for a node: the default paths (the node's own
/// /var/lib and /run), runc from Debian without systemd cgroups, the CNI plugins where Debian
/// installs them, `sandbox_image` kubeadm's pause image, and `restrict_oom_score_adj` because
/// root here may not lower an OOM score (the CRI gives the sandbox -998, and runc fails).
pub fn containerd_toml(sandbox_image: &str) -> String {
    format!(
        "\
version = 4
root = '/var/lib/containerd'
state = '/run/containerd'

[grpc]
  address = '/run/containerd/containerd.sock'

# Its default, /opt/containerd, would be the host's.
[plugins.'io.containerd.internal.v1.opt']
  path = '/var/lib/containerd/opt'

[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '{sandbox_image}'

[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '/etc/cni/net.d'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      SystemdCgroup = false
      BinaryName = '/usr/sbin/runc'
"
    )
}

/// The node's CNI network: a bridge with the node's pod subnet. No masquerading: pods reach
/// other nodes' pods by the routes [`network::route_pods`] adds, with their own addresses.
pub fn cni_conflist(ordinal: u8) -> String {
    let subnet = network::pod_subnet(ordinal);
    format!(
        r#"{{
  "cniVersion": "1.0.0",
  "name": "kubeforge-testenv",
  "plugins": [
    {{
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {{
        "type": "host-local",
        "ranges": [[{{"subnet": "{subnet}"}}]],
        "routes": [{{"dst": "0.0.0.0/0"}}]
      }}
    }},
    {{"type": "portmap", "capabilities": {{"portMappings": true}}}}
  ]
}}
"#
    )
}

/// `/etc/default/kubelet`: the node-specific kubelet flags, where kubeadm's packages read them
/// (KUBELET_EXTRA_ARGS); here the node's own cgroup root.
pub fn kubelet_defaults(cgroup: &str) -> String {
    format!("KUBELET_EXTRA_ARGS=\"--cgroup-root=/{cgroup}\"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_carries_the_cluster_settings() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/init.yaml");
        let example = std::fs::read_to_string(path).expect("examples/init.yaml");
        assert!(
            example.ends_with(CLUSTER_SETTINGS),
            "{path} must end with CLUSTER_SETTINGS (tests/harness/src/config.rs), as `make cluster` needs them"
        );
    }
}
