//! The `control-plane` phase (`kubeadm init phase control-plane`): the static Pod manifests of
//! kube-apiserver, kube-controller-manager and kube-scheduler.

pub mod manifest;

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::staticpod::{MANIFESTS_DIR, MANIFESTS_ROOT, proxy_env_vars, write_manifest};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase,
        requests,
    };

    use crate::manifest::{CA_CERT_EXTRA_DIRS, Component, NodeFacts, apiserver_warnings, manifest};

    /// kubeadm's help text for `kubeadm init phase control-plane`.
    const DESCRIPTION: &str =
        "Generate all static Pod manifest files necessary to establish the control plane";

    struct PhaseComponent;

    impl Guest for PhaseComponent {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "control-plane".into(),
                description: DESCRIPTION.into(),
                sub_phases: Component::ALL
                    .iter()
                    .map(|component| SubPhase {
                        name: component.sub_phase().into(),
                        description: component.description(),
                    })
                    .collect(),
                requests: CapabilityRequest {
                    fs: vec![
                        requests::read_write(MANIFESTS_ROOT),
                        // To tell kubeadm's external-CA mode (ca.crt without ca.key) apart.
                        requests::read("pki"),
                    ],
                    node_paths: requests::names(&CA_CERT_EXTRA_DIRS),
                    ..requests::none()
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
            kubeforge_sdk::staticpod::refuse_rootless_control_plane(&config)?;
            let facts = node_facts()?;
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
                write_manifest(component.name(), &yaml)?;
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    fn node_facts() -> Result<NodeFacts, PhaseError> {
        let mut existing_ca_cert_dirs = Vec::new();
        for dir in CA_CERT_EXTRA_DIRS {
            if kubeforge_sdk::node::path_exists(dir)? {
                existing_ca_cert_dirs.push(dir.to_owned());
            }
        }
        Ok(NodeFacts {
            existing_ca_cert_dirs,
            // The host passes its *_proxy variables to the phase's environment.
            proxy_env: proxy_env_vars(std::env::vars()),
            external_ca: kubeforge_sdk::fs::exists("pki", "ca.crt")?
                && !kubeforge_sdk::fs::exists("pki", "ca.key")?,
        })
    }

    kubeforge_sdk::export!(PhaseComponent with_types_in kubeforge_sdk::bindings);
}
