//! An addon phase a distribution could ship without rebuilding kubeforge: metrics-server's
//! ServiceAccount, RBAC, Service and Deployment (as in metrics-server v0.8's components.yaml,
//! without the APIService, which would break API discovery until the Pod runs).
//!
//! It runs from a profile, in a slot of its own, under exactly the grant the profile gives it:
//!
//! ```yaml
//! apiVersion: kubeforge.dev/v1alpha1
//! kind: PhaseConfiguration
//! phases:
//! - slot: addon/metrics-server
//!   after: addon/kube-proxy
//!   component: file:kubeforge_example_metrics_server.wasm
//!   sha256: <kubeforge component inspect prints it>
//!   grant:
//!     kube:
//!     - verbs: [apply]
//!       resources: [serviceaccounts, services, apps/deployments, rbac.authorization.k8s.io/rolebindings]
//!       namespaces: [kube-system]
//!     - verbs: [apply]
//!       resources: [rbac.authorization.k8s.io/clusterroles, rbac.authorization.k8s.io/clusterrolebindings]
//! ```

use kubeforge_sdk::objects::{
    KUBE_SYSTEM, cluster_role, cluster_role_binding, role_binding, service_account,
    service_account_object,
};
use serde_json::{Value, json};

pub const NAME: &str = "metrics-server";
pub const IMAGE: &str = "registry.k8s.io/metrics-server/metrics-server:v0.8.0";

/// Every object, in the order they are applied.
pub fn objects() -> Vec<Value> {
    let labels = json!({"k8s-app": NAME});
    let subject = || vec![service_account(KUBE_SYSTEM, NAME)];
    vec![
        service_account_object(KUBE_SYSTEM, NAME),
        cluster_role(
            "system:metrics-server",
            vec![
                json!({"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]}),
                json!({"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}),
            ],
        ),
        role_binding(
            KUBE_SYSTEM,
            "metrics-server-auth-reader",
            "extension-apiserver-authentication-reader",
            subject(),
        ),
        cluster_role_binding(
            "metrics-server:system:auth-delegator",
            "system:auth-delegator",
            subject(),
        ),
        cluster_role_binding("system:metrics-server", "system:metrics-server", subject()),
        json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NAME, "namespace": KUBE_SYSTEM, "labels": labels},
            "spec": {
                "selector": labels,
                "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https"}],
            },
        }),
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": KUBE_SYSTEM, "labels": labels},
            "spec": {
                "selector": {"matchLabels": labels},
                "strategy": {"rollingUpdate": {"maxUnavailable": 0}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": NAME,
                        "priorityClassName": "system-cluster-critical",
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                        "containers": [{
                            "name": NAME,
                            "image": IMAGE,
                            "args": [
                                "--cert-dir=/tmp",
                                "--secure-port=10250",
                                "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
                                "--kubelet-use-node-status-port",
                                "--metric-resolution=15s",
                            ],
                            "ports": [{"containerPort": 10250, "name": "https", "protocol": "TCP"}],
                            "readinessProbe": {
                                "httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"},
                                "periodSeconds": 10,
                            },
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true,
                                "runAsUser": 1000,
                                "capabilities": {"drop": ["ALL"]},
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "volumeMounts": [{"mountPath": "/tmp", "name": "tmp-dir"}],
                        }],
                        "volumes": [{"name": "tmp-dir", "emptyDir": {}}],
                    },
                },
            },
        }),
    ]
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::objects::apply;
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseInfo, PhaseReport, Result, info, requests,
    };

    const RBAC: [&str; 2] = [
        "rbac.authorization.k8s.io/clusterroles",
        "rbac.authorization.k8s.io/clusterrolebindings",
    ];

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: crate::NAME.into(),
                description: "Install metrics-server (example third-party addon)".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    kube: vec![
                        requests::rule(
                            &["apply"],
                            &[
                                "serviceaccounts",
                                "services",
                                "apps/deployments",
                                "rbac.authorization.k8s.io/rolebindings",
                            ],
                            &["kube-system"],
                        ),
                        requests::rule(&["apply"], &RBAC, &[]),
                    ],
                    ..requests::none()
                },
            }
        }

        fn run(_context: PhaseContext, sub_phase: Option<String>) -> Result<PhaseReport> {
            kubeforge_sdk::check_sub_phase(crate::NAME, sub_phase.as_deref(), &[])?;
            for object in crate::objects() {
                apply(&object)?;
            }
            info("[addons] Applied addon: metrics-server");
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}
