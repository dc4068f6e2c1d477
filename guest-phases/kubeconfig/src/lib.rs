//! The `kubeconfig` phase: the kubeconfig files of the admin, the super-admin, the kubelet, the
//! controller-manager and the scheduler, each with a client certificate signed by the cluster CA.
//!
//! What each file says ([`kubeconfig_specs`]) and whether an existing file is reused
//! ([`kubeconfig_action`]) are pure functions, unit-tested natively; the component module asks
//! the host what exists and carries the decisions out.

use kubeforge_sdk::api::EffectiveConfig;
use kubeforge_sdk::api::net;
use kubeforge_sdk::certificates;
use kubeforge_sdk::pki::{CertificateSpec, ExtKeyUsage, KubeconfigSpec};
use kubeforge_sdk::{FieldError, PhaseError};

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(test)]
mod tests;

/// Where kubeadm writes kubeconfig files (`--kubeconfig-dir`); the `kubeconfig` root maps to
/// it, and kubeadm's messages name files by their full path.
pub const KUBERNETES_DIR: &str = "/etc/kubernetes";

/// A kubeconfig file kubeadm's `kubeconfig` phase writes.
#[derive(Debug, PartialEq, Eq)]
pub struct Kubeconfig {
    /// The sub-phase name.
    pub name: &'static str,
    /// The file name under the `kubeconfig` root.
    pub file: &'static str,
    /// kubeadm's sub-phase description.
    pub description: &'static str,
}

/// kubeadm's kubeconfig sub-phases, in its order.
pub const KUBECONFIGS: [Kubeconfig; 5] = [
    Kubeconfig {
        name: "admin",
        file: "admin.conf",
        description: "Generate a kubeconfig file for the admin to use and for kubeadm itself",
    },
    Kubeconfig {
        name: "super-admin",
        file: "super-admin.conf",
        description: "Generate a kubeconfig file for the super-admin",
    },
    Kubeconfig {
        name: "kubelet",
        file: "kubelet.conf",
        description: "Generate a kubeconfig file for the kubelet to use *only* for cluster bootstrapping purposes",
    },
    Kubeconfig {
        name: "controller-manager",
        file: "controller-manager.conf",
        description: "Generate a kubeconfig file for the controller manager to use",
    },
    Kubeconfig {
        name: "scheduler",
        file: "scheduler.conf",
        description: "Generate a kubeconfig file for the scheduler to use",
    },
];

/// One kubeconfig file to write, with its client certificate.
#[derive(Debug, Clone)]
pub struct KubeconfigDef {
    pub kubeconfig: &'static Kubeconfig,
    pub cluster_name: String,
    pub server: String,
    /// The user entry's name, which is also the client certificate's CN.
    pub user_name: String,
    pub client_certificate: CertificateSpec,
}

impl KubeconfigDef {
    /// The file's path as kubeadm prints it.
    pub fn path(&self) -> String {
        format!("{KUBERNETES_DIR}/{}", self.kubeconfig.file)
    }
}

/// Every kubeconfig file, in kubeadm's order, as `cfg` defines them (kubeadm's
/// `getKubeConfigSpecsBase`).
pub fn kubeconfig_specs(cfg: &EffectiveConfig) -> Result<Vec<KubeconfigDef>, PhaseError> {
    let validity_seconds = certificates::certificate_validity_seconds(cfg)?;
    let node_name = required(
        cfg.init.node_registration.name.as_deref(),
        "nodeRegistration.name",
    )?;
    required(
        cfg.init.local_api_endpoint.advertise_address.as_deref(),
        "localAPIEndpoint.advertiseAddress",
    )?;
    let cluster_name = required(cfg.cluster.cluster_name.as_deref(), "clusterName")?;
    let control_plane = net::control_plane_endpoint_url(cfg);
    let local = net::local_api_endpoint_url(cfg);
    let node_user = format!("system:node:{node_name}");
    KUBECONFIGS
        .iter()
        .map(|kubeconfig| {
            let (user, organization, server): (&str, Option<&str>, &str) = match kubeconfig.name {
                "admin" => (
                    "kubernetes-admin",
                    Some("kubeadm:cluster-admins"),
                    &control_plane,
                ),
                "super-admin" => (
                    "kubernetes-super-admin",
                    Some("system:masters"),
                    &control_plane,
                ),
                // The init node's kubelet talks to its own API server (kubeadm's
                // ControlPlaneKubeletLocalMode: GA and locked in v1.35, which no longer reads
                // it; removed in v1.36).
                "kubelet" => (&node_user, Some("system:nodes"), &local),
                "controller-manager" => ("system:kube-controller-manager", None, &local),
                "scheduler" => ("system:kube-scheduler", None, &local),
                other => unreachable!("{other} is not in KUBECONFIGS"),
            };
            Ok(KubeconfigDef {
                kubeconfig,
                cluster_name: cluster_name.into(),
                server: server.into(),
                user_name: user.into(),
                client_certificate: CertificateSpec {
                    common_name: user.into(),
                    organizations: organization.into_iter().map(String::from).collect(),
                    dns_names: vec![],
                    ip_addresses: vec![],
                    ext_key_usages: vec![ExtKeyUsage::ClientAuth],
                    validity_seconds,
                },
            })
        })
        .collect()
}

/// What to do about one kubeconfig file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigAction {
    Write,
    /// Keep the existing file; kubeadm only warns when it points at another server.
    Reuse {
        warning: Option<String>,
    },
}

/// kubeadm's `validateKubeConfig`: an existing file with the same CA is kept (a different server
/// only warns), one with another CA is an error. Without the CA key (external CA mode) nothing
/// can be written, so the file must already be there.
pub fn kubeconfig_action(
    def: &KubeconfigDef,
    existing: Option<&KubeconfigSpec>,
    ca_pem: &str,
    ca_has_key: bool,
) -> Result<KubeconfigAction, PhaseError> {
    let path = def.path();
    let Some(existing) = existing else {
        if !ca_has_key {
            return Err(PhaseError::Conflict(format!(
                "external CA mode: ca.key is not present, so {path} must be provided; \
                 it does not exist"
            )));
        }
        return Ok(KubeconfigAction::Write);
    };
    if existing.certificate_authority_pem.trim() != ca_pem.trim() {
        return Err(PhaseError::Conflict(format!(
            "a kubeconfig file {path:?} exists already but has got the wrong CA cert"
        )));
    }
    let warning = (existing.server != def.server).then(|| {
        format!(
            "a kubeconfig file {path:?} exists already but has an unexpected API Server URL: \
             expected: {}, got: {}",
            def.server, existing.server
        )
    });
    Ok(KubeconfigAction::Reuse { warning })
}

/// Checks a requested sub-phase name: none and `all` select everything.
pub fn check_sub_phase(sub_phase: Option<&str>) -> Result<(), PhaseError> {
    let names: Vec<&str> = KUBECONFIGS.iter().map(|k| k.name).collect();
    kubeforge_sdk::check_sub_phase("kubeconfig", sub_phase, &names)
}

fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, PhaseError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        PhaseError::InvalidConfig(FieldError {
            field: field.into(),
            reason: "must be set".into(),
        })
    })
}
