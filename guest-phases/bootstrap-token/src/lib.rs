//! The `bootstrap-token` phase (`kubeadm init phase bootstrap-token`): the bootstrap token
//! Secrets, the RBAC that lets their holders join (post CSRs, have them auto-approved, get
//! nodes) and rotate node certificates, and the `kube-public/cluster-info` ConfigMap with the
//! anonymous Role that lets joining nodes discover the cluster.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubeforge_sdk::api::release::Release;
pub use kubeforge_sdk::bootstrap_token::{rfc3339, split_token, token_secret};
use kubeforge_sdk::objects::{
    NODE_BOOTSTRAP_TOKEN_GROUP, NODES_GROUP, cluster_role, cluster_role_binding, config_map,
    core_rule, group, role, role_binding, user,
};
use serde_json::{Value, json};

pub use kubeforge_sdk::objects::KUBE_SYSTEM;
pub const KUBE_PUBLIC: &str = "kube-public";
pub const CLUSTER_INFO: &str = "cluster-info";
/// The Role and RoleBinding that let anyone read cluster-info.
pub const CLUSTER_INFO_RBAC: &str = "kubeadm:bootstrap-signer-clusterinfo";

/// One step of kubeadm's RBAC for bootstrap tokens and node certificates: the line it prints
/// and the objects it applies.
pub struct RbacStep {
    pub message: &'static str,
    pub objects: Vec<Value>,
}

/// The RBAC for bootstrap tokens and node certificates, in kubeadm's order (its
/// `phases/bootstraptoken/node`): get nodes, post CSRs, auto-approve node client CSRs,
/// auto-approve node certificate rotation, and from v1.36 the API server's access to the
/// kubelet API (its kubelet client certificate is no longer a cluster admin's).
pub fn token_rbac(release: Release) -> Vec<RbacStep> {
    let bootstrappers = || vec![group(NODE_BOOTSTRAP_TOKEN_GROUP)];
    let mut steps = vec![
        RbacStep {
            message: "[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to get nodes",
            objects: vec![
                cluster_role(
                    "kubeadm:get-nodes",
                    vec![core_rule(&["get"], &["nodes"], &[])],
                ),
                cluster_role_binding("kubeadm:get-nodes", "kubeadm:get-nodes", bootstrappers()),
            ],
        },
        RbacStep {
            message: "[bootstrap-token] Configured RBAC rules to allow Node Bootstrap tokens to post CSRs in order for nodes to get long term certificate credentials",
            objects: vec![cluster_role_binding(
                "kubeadm:kubelet-bootstrap",
                "system:node-bootstrapper",
                bootstrappers(),
            )],
        },
        RbacStep {
            message: "[bootstrap-token] Configured RBAC rules to allow the csrapprover controller automatically approve CSRs from a Node Bootstrap Token",
            objects: vec![cluster_role_binding(
                "kubeadm:node-autoapprove-bootstrap",
                "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
                bootstrappers(),
            )],
        },
        RbacStep {
            message: "[bootstrap-token] Configured RBAC rules to allow certificate rotation for all node client certificates in the cluster",
            objects: vec![cluster_role_binding(
                "kubeadm:node-autoapprove-certificate-rotation",
                "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                vec![group(NODES_GROUP)],
            )],
        },
    ];
    if release.minor >= 36 {
        steps.push(RbacStep {
            message: "[bootstrap-token] Configured RBAC rules to allow the API server kubelet client certificate to access the kubelet API",
            objects: vec![cluster_role_binding(
                "kubeadm:apiserver-kubelet-client",
                "system:kubelet-api-admin",
                vec![user("kube-apiserver-kubelet-client")],
            )],
        });
    }
    steps
}

/// kubeadm's line naming the tokens init uses: one by itself, several as Go prints a slice.
pub fn using_tokens_line(tokens: &[&str]) -> Option<String> {
    match tokens {
        [] => None,
        [token] => Some(format!("[bootstrap-token] Using token: {token}")),
        _ => Some(format!(
            "[bootstrap-token] Using tokens: [{}]",
            tokens.join(" ")
        )),
    }
}

/// The kubeconfig kubeadm puts in cluster-info: admin.conf's cluster (server and CA) under the
/// empty name, and nothing else.
pub fn cluster_info_kubeconfig(server: &str, ca_pem: &str) -> String {
    kubeforge_api::yaml::to_string(&json!({
        "apiVersion": "v1",
        "clusters": [{
            "cluster": {
                "certificate-authority-data": STANDARD.encode(ca_pem),
                "server": server,
            },
            "name": "",
        }],
        "contexts": null,
        "current-context": "",
        "kind": "Config",
        "users": null,
    }))
}

/// The cluster-info ConfigMap.
pub fn cluster_info(server: &str, ca_pem: &str) -> Value {
    config_map(
        KUBE_PUBLIC,
        CLUSTER_INFO,
        json!({"kubeconfig": cluster_info_kubeconfig(server, ca_pem)}),
    )
}

/// The Role and RoleBinding that let anonymous users read cluster-info.
pub fn cluster_info_rbac() -> Vec<Value> {
    vec![
        role(
            KUBE_PUBLIC,
            CLUSTER_INFO_RBAC,
            vec![core_rule(&["get"], &["configmaps"], &[CLUSTER_INFO])],
        ),
        role_binding(
            KUBE_PUBLIC,
            CLUSTER_INFO_RBAC,
            CLUSTER_INFO_RBAC,
            vec![user("system:anonymous")],
        ),
    ]
}

#[cfg(target_arch = "wasm32")]
mod component {
    use std::time::{SystemTime, UNIX_EPOCH};

    use kubeforge_sdk::api::release::Release;
    use kubeforge_sdk::objects::{apply, get};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, info,
        pki, requests,
    };

    use crate::{CLUSTER_INFO, KUBE_PUBLIC, KUBE_SYSTEM};

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "bootstrap-token".into(),
                description: "Generates bootstrap tokens used to join a node to a cluster".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    // admin.conf's server and CA go into cluster-info.
                    fs: vec![requests::read("kubeconfig")],
                    kube: vec![
                        requests::rule(&["apply"], &["secrets"], &[KUBE_SYSTEM]),
                        requests::rule(
                            &["apply"],
                            &[
                                "rbac.authorization.k8s.io/clusterroles",
                                "rbac.authorization.k8s.io/clusterrolebindings",
                            ],
                            &[],
                        ),
                        requests::rule(&["get", "apply"], &["configmaps"], &[KUBE_PUBLIC]),
                        requests::rule(
                            &["apply"],
                            &[
                                "rbac.authorization.k8s.io/roles",
                                "rbac.authorization.k8s.io/rolebindings",
                            ],
                            &[KUBE_PUBLIC],
                        ),
                    ],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase("bootstrap-token", sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| failed(format!("the clock is before 1970: {e}")))?
                .as_secs() as i64;
            let tokens = &config.init.bootstrap_tokens;
            let texts: Vec<&str> = tokens.iter().filter_map(|t| t.token.as_deref()).collect();
            if let Some(line) = crate::using_tokens_line(&texts) {
                info(line);
            }
            info(
                "[bootstrap-token] Configuring bootstrap tokens, cluster-info ConfigMap, RBAC Roles",
            );
            for (index, token) in tokens.iter().enumerate() {
                apply(&crate::token_secret(token, index, now).map_err(failed)?)?;
            }
            let release = Release::of_version(config.kubernetes_version());
            for step in crate::token_rbac(release) {
                info(step.message);
                for object in &step.objects {
                    apply(object)?;
                }
            }
            info(format!(
                "[bootstrap-token] Creating the {CLUSTER_INFO:?} ConfigMap in the {KUBE_PUBLIC:?} namespace"
            ));
            // Created if it does not exist, as kubeadm: the bootstrap signer owns its signatures.
            if get("v1", "ConfigMap", Some(KUBE_PUBLIC), CLUSTER_INFO)?.is_none() {
                let admin =
                    pki::inspect_kubeconfig("kubeconfig", "admin.conf")?.ok_or_else(|| {
                        failed("admin.conf does not exist: run the kubeconfig phase first")
                    })?;
                apply(&crate::cluster_info(
                    &admin.server,
                    &admin.certificate_authority_pem,
                ))?;
            }
            for object in crate::cluster_info_rbac() {
                apply(&object)?;
            }
            let outputs = tokens
                .first()
                .and_then(|t| t.token.clone())
                .map(|token| vec![("bootstrap-token".to_string(), token)])
                .unwrap_or_default();
            Ok(PhaseReport { outputs })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
