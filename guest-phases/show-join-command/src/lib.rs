//! The `show-join-command` phase (`kubeadm init phase show-join-command`): kubeadm's closing
//! message with the join commands, once per bootstrap token: the API endpoint and CA from
//! admin.conf, the CA's `sha256:` public key pin, and — once upload-certs has run (the host
//! passes the output `certificate-key`) — the control-plane join with `--certificate-key`.

/// Where the operator finds the admin kubeconfig on the node.
pub const ADMIN_CONF: &str = "/etc/kubernetes/admin.conf";

/// The output upload-certs leaves for this phase: the key the certificates were sealed with.
pub const CERTIFICATE_KEY_OUTPUT: &str = "certificate-key";

/// Who joins: a worker, or a control plane (with the key of the uploaded certificates, if any).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joiner<'a> {
    Worker,
    ControlPlane { certificate_key: Option<&'a str> },
}

/// kubeadm's join command (`GetJoinWorkerCommand`/`GetJoinControlPlaneCommand`).
pub fn join_command(server: &str, token: &str, ca_pin: &str, joiner: Joiner<'_>) -> String {
    let mut command = format!(
        "kubeadm join {} --token {token} \\\n\t--discovery-token-ca-cert-hash {ca_pin} ",
        server.replace("https://", "")
    );
    if let Joiner::ControlPlane { certificate_key } = joiner {
        command.push_str("\\\n\t--control-plane ");
        if let Some(key) = certificate_key.filter(|k| !k.is_empty()) {
            command.push_str(&format!("--certificate-key {key}"));
        }
    }
    command
}

/// kubeadm's `initDoneTempl`. `certificate_key` is the key of the certificates upload-certs
/// uploaded, if it ran (kubeadm's `--upload-certs`).
pub fn init_done(
    server: &str,
    token: &str,
    ca_pin: &str,
    control_plane_endpoint: bool,
    certificate_key: Option<&str>,
) -> String {
    // The template's text starts on the line after its opening quote: a blank line first.
    let mut text = format!(
        "
Your Kubernetes control-plane has initialized successfully!

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
    let control_plane = join_command(
        server,
        token,
        ca_pin,
        Joiner::ControlPlane { certificate_key },
    );
    match (control_plane_endpoint, certificate_key) {
        (false, _) => {}
        (true, Some(_)) => text.push_str(&format!(
            "You can now join any number of control-plane nodes running the following command on each as root:

  {control_plane}

Please note that the certificate-key gives access to cluster sensitive data, keep it secret!
As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use
\"kubeadm init phase upload-certs --upload-certs\" to reload certs afterward.

"
        )),
        (true, None) => text.push_str(&format!(
            "You can now join any number of control-plane nodes by copying certificate authorities
and service account keys on each node and then running the following as root:

  {control_plane}

"
        )),
    }
    text.push_str(&format!(
        "Then you can join any number of worker nodes by running the following on each as root:

{}
",
        join_command(server, token, ca_pin, Joiner::Worker)
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
            let certificate_key = context
                .outputs
                .iter()
                .find(|(name, _)| name == crate::CERTIFICATE_KEY_OUTPUT)
                .map(|(_, key)| key.as_str());
            for token in config
                .init
                .bootstrap_tokens
                .iter()
                .filter_map(|t| t.token.as_deref())
            {
                kubeforge_sdk::info(crate::init_done(
                    &admin.server,
                    token,
                    &pin,
                    endpoint,
                    certificate_key,
                ));
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
                Joiner::Worker
            ),
            "kubeadm join 10.0.0.1:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:00 "
        );
        let text = init_done("https://lb:6443", "t", "sha256:00", true, None);
        assert!(text.contains("by copying certificate authorities\nand service account keys on each node and then running the following as root:\n\n  kubeadm join lb:6443 --token t \\\n\t--discovery-token-ca-cert-hash sha256:00 \\\n\t--control-plane \n\n"));
        assert!(text.ends_with("on each as root:\n\nkubeadm join lb:6443 --token t \\\n\t--discovery-token-ca-cert-hash sha256:00 \n"));
        assert!(!text.contains("certificate-key"));
    }

    #[test]
    fn uploaded_certificates_add_the_key_and_kubeadms_warning() {
        let key = "ab".repeat(32);
        let text = init_done("https://lb:6443", "t", "sha256:00", true, Some(&key));
        let expected = format!(
            "You can now join any number of control-plane nodes running the following command on each as root:

  kubeadm join lb:6443 --token t \\
\t--discovery-token-ca-cert-hash sha256:00 \\
\t--control-plane --certificate-key {key}

Please note that the certificate-key gives access to cluster sensitive data, keep it secret!
As a safeguard, uploaded-certs will be deleted in two hours; If necessary, you can use
\"kubeadm init phase upload-certs --upload-certs\" to reload certs afterward.

Then you can join any number of worker nodes by running the following on each as root:

kubeadm join lb:6443 --token t \\
\t--discovery-token-ca-cert-hash sha256:00 \n"
        );
        assert!(text.ends_with(&expected), "{text}");
        // Without controlPlaneEndpoint kubeadm shows no control-plane join at all.
        let text = init_done("https://10.0.0.1:6443", "t", "sha256:00", false, Some(&key));
        assert!(!text.contains("control-plane nodes"), "{text}");
        assert!(!text.contains(&key), "{text}");
    }
}
