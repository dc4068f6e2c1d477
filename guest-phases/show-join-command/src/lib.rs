//! The `show-join-command` phase (`kubeadm init phase show-join-command`): kubeadm's closing
//! message with the join commands, once per bootstrap token: the API endpoint and CA from
//! admin.conf, the CA's `sha256:` public key pin.

/// Where the operator finds the admin kubeconfig on the node.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// kubeadm's join command (`GetJoinWorkerCommand`/`GetJoinControlPlaneCommand`).
pub fn join_command(server: &str, token: &str, ca_pin: &str, control_plane: bool) -> String {
    let mut command = format!(
        "kubeadm join {} --token {token} \\\n\t--discovery-token-ca-cert-hash {ca_pin} ",
        server.replace("https://", "")
    );
    if control_plane {
        command.push_str("\\\n\t--control-plane ");
    }
    command
}

/// kubeadm's `initDoneTempl` (without uploaded certificates: upload-certs is not run).
pub fn init_done(server: &str, token: &str, ca_pin: &str, control_plane_endpoint: bool) -> String {
    let mut text = format!(
        "Your Kubernetes control-plane has initialized successfully!

To start using your cluster, you need to run the following as a regular user:

  mkdir -p $HOME/.kube
  sudo cp -i {ADMIN_CONF} $HOME/.kube/config
  sudo chown $(id -u):$(id -g) $HOME/.kube/config

Alternatively, if you are the root user, you can run:

  export KUBECONFIG=/etc/kubernetes/admin.conf

You should now deploy a pod network to the cluster.
Run \"kubectl apply -f [podnetwork].yaml\" with one of the options listed at:
  https://kubernetes.io/docs/concepts/cluster-administration/addons/

"
    );
    if control_plane_endpoint {
        text.push_str(&format!(
            "You can now join any number of control-plane nodes by copying certificate authorities
and service account keys on each node and then running the following as root:

  {}

",
            join_command(server, token, ca_pin, true)
        ));
    }
    text.push_str(&format!(
        "Then you can join any number of worker nodes by running the following on each as root:

{}
",
        join_command(server, token, ca_pin, false)
    ));
    text
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, pki,
        requests,
    };

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "show-join-command".into(),
                description: "Show the join command for control-plane and worker node".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    // admin.conf's server and CA.
                    fs: vec![requests::read("kubeconfig")],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase("show-join-command", sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            let admin = pki::inspect_kubeconfig("kubeconfig", "admin.conf")?.ok_or_else(|| {
                failed("admin.conf does not exist: run the kubeconfig phase first")
            })?;
            let pin = pki::public_key_pin(&admin.certificate_authority_pem)?;
            let endpoint = config
                .cluster
                .control_plane_endpoint
                .as_deref()
                .is_some_and(|e| !e.is_empty());
            for token in config
                .init
                .bootstrap_tokens
                .iter()
                .filter_map(|t| t.token.as_deref())
            {
                kubeforge_sdk::info(crate::init_done(&admin.server, token, &pin, endpoint));
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_commands_are_kubeadms() {
        assert_eq!(
            join_command(
                "https://10.0.0.1:6443",
                "abcdef.0123456789abcdef",
                "sha256:00",
                false
            ),
            "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:00 "
        );
        let text = init_done("https://lb:6443", "t", "sha256:00", true);
        assert!(text.contains("  kubeadm join lb:6443 --token t \\\n\t--discovery-token-ca-cert-hash sha256:00 \\\n\t--control-plane \n\n"));
        assert!(text.ends_with("on each as root:\n\nkubeadm join lb:6443 --token t \\\n\t--discovery-token-ca-cert-hash sha256:00 \n"));
    }
}
