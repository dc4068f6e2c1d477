//! The stock phase components built from guest-phases/ and embedded in the binary, with the
//! reviewed grant each one runs under.

use crate::capabilities::kube::KubeRule;
use crate::capabilities::{Access, Grant};

const RBAC_ROLES: &str = "rbac.authorization.k8s.io/roles";
const RBAC_ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/rolebindings";
const RBAC_CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";
const RBAC_CLUSTER_ROLE_BINDINGS: &str = "rbac.authorization.k8s.io/clusterrolebindings";

include!(concat!(env!("OUT_DIR"), "/stock_components.rs"));

/// The bytes of the stock component `name`.
pub fn component(name: &str) -> Option<&'static [u8]> {
    STOCK_COMPONENTS
        .iter()
        .find(|(stock, _)| *stock == name)
        .map(|(_, bytes)| *bytes)
}

/// The names of the stock components.
pub fn names() -> Vec<&'static str> {
    STOCK_COMPONENTS.iter().map(|(name, _)| *name).collect()
}

/// CA-certificate directories kubeadm mounts into the control plane when they exist on the node.
pub const CA_CERTIFICATE_DIRS: &[&str] = &[
    "/etc/ca-certificates",
    "/etc/pki/ca-trust",
    "/etc/pki/tls/certs",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
];

/// The grant of the stock component `name`: exactly what it needs, nothing more.
pub fn grant(name: &str) -> Grant {
    let fs = |roots: &[(&str, Access)]| {
        roots
            .iter()
            .map(|(root, access)| (root.to_string(), *access))
            .collect()
    };
    let cas = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
    match name {
        "certs" => Grant {
            fs: fs(&[("pki", Access::ReadWrite)]),
            pki_sign: cas(&["ca", "front-proxy-ca", "etcd-ca"]),
            pki_create: cas(&["ca", "front-proxy-ca", "etcd-ca"]),
            ..Grant::default()
        },
        "kubeconfig" => Grant {
            fs: fs(&[("kubeconfig", Access::ReadWrite)]),
            pki_sign: cas(&["ca"]),
            ..Grant::default()
        },
        "etcd" => Grant {
            fs: fs(&[
                ("manifests", Access::ReadWrite),
                ("etcd-data", Access::ReadWrite),
            ]),
            ..Grant::default()
        },
        // Reads pki to tell kubeadm's external-CA mode (ca.crt without ca.key) apart.
        "control-plane" => Grant {
            fs: fs(&[("manifests", Access::ReadWrite), ("pki", Access::Read)]),
            node_paths: CA_CERTIFICATE_DIRS.iter().map(|p| p.to_string()).collect(),
            ..Grant::default()
        },
        // Writes the kubelet's flags, instance configuration and configuration; asks whether
        // systemd-resolved's resolv.conf is there; stops and restarts the kubelet.
        "kubelet-start" => Grant {
            fs: fs(&[("kubelet", Access::ReadWrite)]),
            node_paths: vec!["/run/systemd/resolve/resolv.conf".into()],
            node_services: vec!["kubelet".into()],
            ..Grant::default()
        },
        // Probes the kubelet's /healthz and the control-plane components' /livez and /healthz
        // (the host lets probes reach only loopback and the advertise address).
        "wait-control-plane" => Grant {
            node_probes: vec![
                "http://*/healthz".into(),
                "https://*/livez".into(),
                "https://*/healthz".into(),
                "https://*/readyz".into(),
            ],
            ..Grant::default()
        },
        // The kubeadm-config and kubelet-config ConfigMaps and their RBAC; v1.35 without
        // NodeLocalCRISocket also waits for the Node and annotates it with the CRI socket.
        "upload-config" => Grant {
            kube: vec![
                KubeRule::new(
                    &["apply"],
                    &["configmaps", RBAC_ROLES, RBAC_ROLE_BINDINGS],
                    &["kube-system"],
                ),
                KubeRule::new(&["get", "apply"], &["nodes"], &[]),
            ],
            ..Grant::default()
        },
        // Seals the CAs and service-account keys for kubeadm-certs (ciphertext only: the
        // certificate key stays in the host) and applies the Secret, its owner token and RBAC.
        "upload-certs" => Grant {
            fs: fs(&[("pki", Access::Read)]),
            pki_seal: true,
            kube: vec![
                KubeRule::new(
                    &["apply"],
                    &["secrets", RBAC_ROLES, RBAC_ROLE_BINDINGS],
                    &["kube-system"],
                ),
                KubeRule::new(&["patch"], &["secrets"], &["kube-system"]),
            ],
            ..Grant::default()
        },
        // Reads admin.conf (server and CA) for cluster-info.
        "bootstrap-token" => Grant {
            fs: fs(&[("kubeconfig", Access::Read)]),
            kube: vec![
                KubeRule::new(&["apply"], &["secrets"], &["kube-system"]),
                KubeRule::new(
                    &["apply"],
                    &[RBAC_CLUSTER_ROLES, RBAC_CLUSTER_ROLE_BINDINGS],
                    &[],
                ),
                KubeRule::new(&["get", "apply"], &["configmaps"], &["kube-public"]),
                KubeRule::new(
                    &["apply"],
                    &[RBAC_ROLES, RBAC_ROLE_BINDINGS],
                    &["kube-public"],
                ),
            ],
            ..Grant::default()
        },
        // Reads back its ConfigMap (kept if present) and Deployment (keeps its replicas).
        "coredns" => Grant {
            kube: vec![
                KubeRule::new(
                    &["get", "apply"],
                    &["configmaps", "apps/deployments"],
                    &["kube-system"],
                ),
                KubeRule::new(
                    &["apply"],
                    &["serviceaccounts", "services"],
                    &["kube-system"],
                ),
                KubeRule::new(
                    &["apply"],
                    &[RBAC_CLUSTER_ROLES, RBAC_CLUSTER_ROLE_BINDINGS],
                    &[],
                ),
            ],
            ..Grant::default()
        },
        "kube-proxy" => Grant {
            kube: vec![
                KubeRule::new(
                    &["apply"],
                    &[
                        "serviceaccounts",
                        "configmaps",
                        "apps/daemonsets",
                        RBAC_ROLES,
                        RBAC_ROLE_BINDINGS,
                    ],
                    &["kube-system"],
                ),
                KubeRule::new(&["apply"], &[RBAC_CLUSTER_ROLE_BINDINGS], &[]),
            ],
            ..Grant::default()
        },
        // Reads back its Deployment (keeps its replicas); its RBAC is the API server's own.
        "kube-dns" => Grant {
            kube: vec![
                KubeRule::new(&["get", "apply"], &["apps/deployments"], &["kube-system"]),
                KubeRule::new(
                    &["apply"],
                    &["serviceaccounts", "services"],
                    &["kube-system"],
                ),
            ],
            ..Grant::default()
        },
        // Waits for its Node, then applies the labels and the merged taints.
        "mark-control-plane" => Grant {
            kube: vec![KubeRule::new(&["get", "apply"], &["nodes"], &[])],
            ..Grant::default()
        },
        // Points kubelet.conf at the kubelet's rotating client certificate once it exists, and
        // restarts the kubelet.
        "kubelet-finalize" => Grant {
            fs: fs(&[("kubeconfig", Access::ReadWrite)]),
            node_paths: vec!["/var/lib/kubelet/pki/kubelet-client-current.pem".into()],
            node_services: vec!["kubelet".into()],
            ..Grant::default()
        },
        // Reads admin.conf (server and CA) for the join command.
        "show-join-command" => Grant {
            fs: fs(&[("kubeconfig", Access::Read)]),
            ..Grant::default()
        },
        _ => Grant::default(),
    }
}
