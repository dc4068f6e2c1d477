//! The `control-plane` phase (`kubeadm init phase control-plane`): the static Pod manifests of
//! kube-apiserver, kube-controller-manager and kube-scheduler.

pub mod manifest;

#[cfg(target_arch = "wasm32")]
mod component {
    use std::time::{SystemTime, UNIX_EPOCH};

    use kubeforge_api::EffectiveConfig;
    use kubeforge_sdk::pki::{self, PrivateKey};
    use kubeforge_sdk::staticpod::{
        MANIFEST_MODE, MANIFESTS_DIR, MANIFESTS_ROOT, manifest_file_name, proxy_env_vars,
    };
    use kubeforge_sdk::{
        CapabilityRequest, FieldError, FsRequest, Guest, PhaseContext, PhaseError, PhaseInfo,
        PhaseReport, SubPhase,
    };

    use crate::manifest::{CA_CERT_EXTRA_DIRS, Component, NodeFacts, apiserver_warnings, manifest};

    /// The logical fs root the host maps to the certificates directory.
    const PKI_ROOT: &str = "pki";

    struct PhaseComponent;

    impl Guest for PhaseComponent {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "control-plane".into(),
                description: "Generate all static Pod manifest files necessary to establish the control plane".into(),
                sub_phases: Component::ALL
                    .iter()
                    .map(|component| SubPhase { name: component.sub_phase().into(), description: component.description() })
                    .collect(),
                requests: CapabilityRequest {
                    fs: vec![
                        FsRequest { root: MANIFESTS_ROOT.into(), writable: true },
                        // Only to tell whether the CA key is absent (external CA mode).
                        FsRequest { root: PKI_ROOT.into(), writable: false },
                    ],
                    pki_sign: vec![],
                    pki_create: vec![],
                    kube: vec![],
                    node_paths: CA_CERT_EXTRA_DIRS.iter().map(|dir| (*dir).into()).collect(),
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            let sub_phase = sub_phase.as_deref();
            let selected: Vec<Component> = Component::ALL
                .into_iter()
                .filter(|c| kubeforge_sdk::selects(sub_phase, c.sub_phase()))
                .collect();
            if selected.is_empty() {
                return Err(kubeforge_sdk::failed(format!(
                    "the control-plane phase has no sub-phase {sub_phase:?}"
                )));
            }
            let config = kubeforge_sdk::config(&context)?;
            refuse_rootless_control_plane(&config)?;
            let facts = node_facts(&selected)?;
            if matches!(sub_phase, None | Some("all")) {
                kubeforge_sdk::info(format!(
                    "[control-plane] Using manifest folder {MANIFESTS_DIR:?}"
                ));
            }
            for component in selected {
                kubeforge_sdk::info(format!(
                    "[control-plane] Creating static Pod manifest for {:?}",
                    component.name()
                ));
                if component == Component::ApiServer {
                    apiserver_warnings(&config)
                        .iter()
                        .for_each(kubeforge_sdk::warn);
                }
                let yaml = manifest(&config, &facts, component);
                kubeforge_sdk::write_text(
                    MANIFESTS_ROOT,
                    &manifest_file_name(component.name()),
                    &yaml,
                    MANIFEST_MODE,
                )?;
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    /// kubeadm runs the components as dedicated users under this gate, which needs users and
    /// file ownership on the node that a phase cannot arrange.
    fn refuse_rootless_control_plane(config: &EffectiveConfig) -> Result<(), PhaseError> {
        if config.cluster.feature_gates.get("RootlessControlPlane") == Some(&true) {
            return Err(PhaseError::InvalidConfig(FieldError {
                field: "featureGates.RootlessControlPlane".into(),
                reason: "running the control plane as non-root users is not supported by kubeforge"
                    .into(),
            }));
        }
        Ok(())
    }

    fn node_facts(selected: &[Component]) -> Result<NodeFacts, PhaseError> {
        let mut existing_ca_cert_dirs = Vec::new();
        for dir in CA_CERT_EXTRA_DIRS {
            if kubeforge_sdk::node::path_exists(dir)? {
                existing_ca_cert_dirs.push(dir.to_owned());
            }
        }
        let external_ca = selected.contains(&Component::ControllerManager) && using_external_ca()?;
        Ok(NodeFacts {
            existing_ca_cert_dirs,
            proxy_env: proxy_env_vars(std::env::vars()),
            external_ca,
        })
    }

    /// kubeadm's external CA mode: a valid CA certificate whose key is not on the node.
    fn using_external_ca() -> Result<bool, PhaseError> {
        let Some(certificate) = kubeforge_sdk::read_text(PKI_ROOT, "ca.crt")? else {
            return Ok(false);
        };
        let Ok(info) = pki::inspect(&certificate) else {
            return Ok(false);
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since_epoch| {
                i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX)
            });
        if !info.is_ca || now < info.not_before || now > info.not_after {
            return Ok(false);
        }
        // Only whether the key file exists matters; the key itself stays in the host.
        Ok(matches!(PrivateKey::load(PKI_ROOT, "ca.key"), Ok(None)))
    }

    kubeforge_sdk::export!(PhaseComponent with_types_in kubeforge_sdk::bindings);
}
