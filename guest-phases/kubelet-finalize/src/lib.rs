//! The `kubelet-finalize` phase (`kubeadm init phase kubelet-finalize`): once the kubelet has
//! a rotating client certificate (`/var/lib/kubelet/pki/kubelet-client-current.pem`), point
//! `/etc/kubernetes/kubelet.conf` at it instead of the certificate and key kubeadm embedded,
//! and restart the kubelet.
//!
//! As kubeadm v1.35 (`cmd/kubeadm/app/cmd/phases/init/kubeletfinalize.go`): its only
//! sub-phase is `enable-client-cert-rotation` (the old `experimental-cert-rotation` alias is
//! gone); without the PEM file, rotation is taken to be off and nothing changes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubeforge_api::EffectiveConfig;
use kubeforge_sdk::kubelet::KUBELET_DIR;
use kubeforge_sdk::pki::KubeconfigSpec;
use kubeforge_sdk::staticpod::{arg_value, join_path};
use serde_json::json;

/// The sub-phase that points kubelet.conf at the rotating certificate.
pub const ENABLE_CLIENT_CERT_ROTATION: &str = "enable-client-cert-rotation";

/// The kubelet's rotating client certificate and key, in one file (a symlink the kubelet
/// moves on every rotation), where kubeadm looks for it by default.
pub const CURRENT_PEM: &str = "/var/lib/kubelet/pki/kubelet-client-current.pem";

/// The kubelet's kubeconfig under the `kubeconfig` root, and on the node.
pub const KUBELET_CONF: &str = "kubelet.conf";
pub const KUBELET_CONF_PATH: &str = "/etc/kubernetes/kubelet.conf";

/// Where kubeadm looks for the rotating certificate: in the kubelet's `--cert-dir` when
/// `kubeletExtraArgs` sets it, else in `/var/lib/kubelet/pki`.
pub fn current_pem(config: &EffectiveConfig) -> String {
    let default_dir = join_path(KUBELET_DIR, "pki");
    let dir = arg_value(
        &config.init.node_registration.kubelet_extra_args,
        "cert-dir",
    )
    .unwrap_or(&default_dir);
    join_path(dir, "kubelet-client-current.pem")
}

/// The kubeconfig of `spec` with its user authenticating with the certificate and key in
/// `pem`, as client-go v0.35 writes it (the context named `<user>@<cluster>`, as kubeadm names
/// it).
pub fn rotatable_kubeconfig(spec: &KubeconfigSpec, pem: &str) -> String {
    let context = format!("{}@{}", spec.user_name, spec.cluster_name);
    kubeforge_api::yaml::to_string(&json!({
        "apiVersion": "v1",
        "clusters": [{
            "cluster": {
                "certificate-authority-data": STANDARD.encode(&spec.certificate_authority_pem),
                "server": spec.server,
            },
            "name": spec.cluster_name,
        }],
        "contexts": [{
            "context": {"cluster": spec.cluster_name, "user": spec.user_name},
            "name": context,
        }],
        "current-context": context,
        "kind": "Config",
        "users": [{
            "name": spec.user_name,
            "user": {"client-certificate": pem, "client-key": pem},
        }],
    }))
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::kubelet::{SERVICE, ServiceStep, control_service};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase,
        failed, info, log, node, pki, read_text, requests, warn, write_text,
    };

    use crate::{
        CURRENT_PEM, ENABLE_CLIENT_CERT_ROTATION, KUBELET_CONF, KUBELET_CONF_PATH, current_pem,
        rotatable_kubeconfig,
    };

    const KUBECONFIG_ROOT: &str = "kubeconfig";
    const KUBECONFIG_MODE: u32 = 0o600;

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "kubelet-finalize".into(),
                description: "Updates settings relevant to the kubelet after TLS bootstrap".into(),
                sub_phases: vec![SubPhase {
                    name: ENABLE_CLIENT_CERT_ROTATION.into(),
                    description: "Enable kubelet client certificate rotation".into(),
                }],
                requests: CapabilityRequest {
                    fs: vec![requests::read_write(KUBECONFIG_ROOT)],
                    node_paths: requests::names(&[CURRENT_PEM]),
                    node_services: requests::names(&[SERVICE]),
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            let sub_phase = sub_phase.as_deref();
            kubeforge_sdk::check_sub_phase(
                "kubelet-finalize",
                sub_phase,
                &[ENABLE_CLIENT_CERT_ROTATION],
            )?;
            if kubeforge_sdk::selects(sub_phase, ENABLE_CLIENT_CERT_ROTATION) {
                let config = kubeforge_sdk::config(&context)?;
                enable_client_cert_rotation(&current_pem(&config))?;
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    fn enable_client_cert_rotation(pem: &str) -> Result<(), PhaseError> {
        if pem != CURRENT_PEM {
            // The grant names the one path this phase may ask about.
            warn(format!(
                "[kubelet-finalize] kubeletExtraArgs sets --cert-dir: {KUBELET_CONF_PATH:?} is left as is; \
                 point its user at {pem:?} by hand once that file exists"
            ));
            return Ok(());
        }
        // A symlink, which fs calls refuse: ask the node.
        if !node::path_exists(pem)? {
            log::emit(
                log::Level::Debug,
                &format!(
                    "[kubelet-finalize] Assuming that kubelet client certificate rotation is disabled: {pem:?} does not exist"
                ),
            );
            return Ok(());
        }
        let spec = pki::inspect_kubeconfig(KUBECONFIG_ROOT, KUBELET_CONF)?.ok_or_else(|| {
            failed(format!(
                "could not load {KUBELET_CONF_PATH:?}: the file does not exist"
            ))
        })?;
        let rotatable = rotatable_kubeconfig(&spec, pem);
        // A kubelet.conf without an embedded certificate holds no key either and can be read:
        // when it already says what we would write, leave it (and the kubelet) alone.
        if spec.client_certificate_pem.is_empty()
            && read_text(KUBECONFIG_ROOT, KUBELET_CONF)?.as_deref() == Some(rotatable.as_str())
        {
            info(format!(
                "[kubelet-finalize] {KUBELET_CONF_PATH:?} already points to a rotatable kubelet client certificate and key"
            ));
            return Ok(());
        }
        info(format!(
            "[kubelet-finalize] Updating {KUBELET_CONF_PATH:?} to point to a rotatable kubelet client certificate and key"
        ));
        write_text(KUBECONFIG_ROOT, KUBELET_CONF, &rotatable, KUBECONFIG_MODE)?;
        log::emit(
            log::Level::Debug,
            "[kubelet-finalize] Restarting the kubelet to enable client certificate rotation",
        );
        control_service(ServiceStep::Restart)
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
