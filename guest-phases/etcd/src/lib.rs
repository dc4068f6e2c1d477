//! The `etcd` phase (`kubeadm init phase etcd`): the static Pod manifest for a local,
//! single-member etcd, and its data directory. With external etcd there is nothing to do.

pub mod manifest;

/// The sub-phase that writes the local etcd manifest.
pub const LOCAL: &str = "local";

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_api::EffectiveConfig;
    use kubeforge_sdk::staticpod::{MANIFESTS_DIR, MANIFESTS_ROOT, write_manifest};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase,
        requests,
    };

    use crate::LOCAL;
    use crate::manifest::{ETCD, data_dir, etcd_manifest, local_etcd};

    /// The logical fs root the host maps to the etcd data directory.
    const ETCD_DATA_ROOT: &str = "etcd-data";

    /// kubeadm's help text for `kubeadm init phase etcd local`.
    const LOCAL_DESCRIPTION: &str =
        "Generate the static Pod manifest file for a local, single-node local etcd instance";

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "etcd".into(),
                description: "Generate static Pod manifest file for local etcd".into(),
                sub_phases: vec![SubPhase {
                    name: LOCAL.into(),
                    description: LOCAL_DESCRIPTION.into(),
                }],
                requests: CapabilityRequest {
                    fs: vec![
                        requests::read_write(MANIFESTS_ROOT),
                        requests::read_write(ETCD_DATA_ROOT),
                    ],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            let sub_phase = sub_phase.as_deref();
            kubeforge_sdk::check_sub_phase("etcd", sub_phase, &[LOCAL])?;
            let config = kubeforge_sdk::config(&context)?;
            kubeforge_sdk::staticpod::refuse_rootless_control_plane(&config)?;
            if kubeforge_sdk::selects(sub_phase, LOCAL) {
                write_local_etcd(&config, context.dry_run)?;
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    fn write_local_etcd(config: &EffectiveConfig, dry_run: bool) -> Result<(), PhaseError> {
        let (Some(local), Some(manifest)) = (local_etcd(config), etcd_manifest(config)) else {
            kubeforge_sdk::info(
                "[etcd] External etcd mode. Skipping the creation of a manifest for local etcd",
            );
            return Ok(());
        };
        if dry_run {
            kubeforge_sdk::info(format!(
                "[etcd] Would ensure that {:?} directory is present",
                data_dir(&local)
            ));
        }
        // kubeadm creates the data directory 0700 before etcd first starts; in a dry run the
        // host records this instead of doing it.
        kubeforge_sdk::fs::create_dir(ETCD_DATA_ROOT, "", 0o700)?;
        kubeforge_sdk::info(format!(
            "[etcd] Creating static Pod manifest for local etcd in {MANIFESTS_DIR:?}"
        ));
        write_manifest(ETCD, &manifest)
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}
