//! The wasm glue: open the CA, inspect existing files, generate every needed key at once (the
//! host generates them in parallel), then sign and write.

use kubeforge_sdk::pki::{self, Authority, KubeconfigSpec, PrivateKey};
use kubeforge_sdk::{
    CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase, info,
    requests, selects, warn,
};

use crate::{
    KUBECONFIGS, KUBERNETES_DIR, KubeconfigAction, check_sub_phase, kubeconfig_action,
    kubeconfig_specs,
};

const KUBECONFIG: &str = "kubeconfig";
const CA: &str = "ca";

struct Component;

/// A decided kubeconfig file: written with a freshly requested key, or reused (with kubeadm's
/// warning when it points at another server).
enum Plan {
    Write(PrivateKey),
    Reuse(Option<String>),
}

impl Guest for Component {
    fn describe() -> PhaseInfo {
        PhaseInfo {
            name: "kubeconfig".into(),
            description: "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file".into(),
            sub_phases: KUBECONFIGS
                .iter()
                .map(|kubeconfig| SubPhase {
                    name: kubeconfig.name.into(),
                    description: kubeconfig.description.into(),
                })
                .collect(),
            requests: CapabilityRequest {
                fs: vec![requests::read_write(KUBECONFIG)],
                pki_sign: requests::names(&[CA]),
                ..requests::none()
            },
        }
    }

    fn run(context: PhaseContext, sub_phase: Option<String>) -> Result<PhaseReport, PhaseError> {
        let sub_phase = sub_phase.as_deref();
        check_sub_phase(sub_phase)?;
        let config = kubeforge_sdk::config(&context)?;
        let algorithm = kubeforge_sdk::certificates::key_algorithm(&config);
        let defs = kubeconfig_specs(&config)?;

        if matches!(sub_phase, None | Some("all")) {
            info(format!(
                "[kubeconfig] Using kubeconfig folder {KUBERNETES_DIR:?}"
            ));
        }
        let ca = Authority::open(CA)?.ok_or_else(|| {
            kubeforge_sdk::failed(
                "the CA files do not exist, please run `kubeforge init phase certs ca` to \
                 generate it",
            )
        })?;
        let ca_pem = ca.certificate_pem();
        let ca_has_key = ca.has_key();

        // Each decision is made before its key is requested, and every key is requested before
        // the first is used, so the host generates them in parallel.
        let mut planned = Vec::new();
        for def in defs
            .iter()
            .filter(|def| selects(sub_phase, def.kubeconfig.name))
        {
            let existing = pki::inspect_kubeconfig(KUBECONFIG, def.kubeconfig.file)?;
            let plan = match kubeconfig_action(def, existing.as_ref(), &ca_pem, ca_has_key)? {
                KubeconfigAction::Write => Plan::Write(PrivateKey::generate(algorithm)),
                KubeconfigAction::Reuse { warning } => Plan::Reuse(warning),
            };
            planned.push((def, plan));
        }

        for (def, plan) in planned {
            match plan {
                Plan::Reuse(warning) => {
                    if let Some(warning) = warning {
                        warn(warning);
                    }
                    if ca_has_key {
                        info(format!(
                            "[kubeconfig] Using existing kubeconfig file: {:?}",
                            def.path()
                        ));
                    } else {
                        info(format!(
                            "[kubeconfig] External CA mode: Using user provided {}",
                            def.kubeconfig.file
                        ));
                    }
                }
                Plan::Write(key) => {
                    info(format!(
                        "[kubeconfig] Writing {:?} kubeconfig file",
                        def.kubeconfig.file
                    ));
                    let client_certificate_pem = ca.sign(&def.client_certificate, &key)?;
                    let spec = KubeconfigSpec {
                        cluster_name: def.cluster_name.clone(),
                        server: def.server.clone(),
                        certificate_authority_pem: ca_pem.clone(),
                        user_name: def.user_name.clone(),
                        client_certificate_pem,
                    };
                    pki::store_kubeconfig(KUBECONFIG, def.kubeconfig.file, &spec, &key)?;
                }
            }
        }
        Ok(PhaseReport { outputs: vec![] })
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
