//! The wasm glue: ask the host what exists and decide with the pure functions, requesting a key
//! for each certificate that needs one as soon as that is decided; only then create and sign, so
//! the host has generated all keys in parallel.

use std::collections::HashMap;

use kubeforge_sdk::pki::{self, Authority, KeyAlgorithm, PrivateKey};
use kubeforge_sdk::{
    CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, SubPhase, fs, info,
    requests, selects, warn,
};

use crate::{
    CERTIFICATES, CaStatus, CertDef, ExistingLeaf, Identity, LeafAction, SERVICE_ACCOUNT,
    authority, certificate_specs, check_sub_phase, leaf_action, serving_line, sub_phases,
};

const PKI: &str = "pki";
const CERT_MODE: u32 = 0o644;
/// sa.pub's mode: kubeadm writes public keys as keys (client-go's keyutil.WriteKey, 0600).
const PUBLIC_KEY_MODE: u32 = 0o600;

struct Component;

/// One decided step of the run, in kubeadm's order; steps that create something hold the key
/// requested for it.
enum Step {
    SkipForExternalEtcd(&'static Identity),
    ReuseCa {
        identity: &'static Identity,
        has_key: bool,
    },
    CreateCa(CertDef, PrivateKey),
    ReuseLeaf(&'static Identity),
    IssueLeaf(CertDef, PrivateKey),
    ReuseServiceAccount {
        public_key_missing: bool,
        key: PrivateKey,
    },
    CreateServiceAccount(PrivateKey),
}

impl Guest for Component {
    fn describe() -> PhaseInfo {
        let authorities: Vec<String> = CERTIFICATES
            .iter()
            .filter(|identity| identity.issuer.is_none())
            .map(|identity| identity.name.to_string())
            .collect();
        PhaseInfo {
            name: "certs".into(),
            description: "Certificate generation".into(),
            sub_phases: sub_phases()
                .into_iter()
                .map(|(name, description)| SubPhase {
                    name: name.into(),
                    description,
                })
                .collect(),
            requests: CapabilityRequest {
                fs: vec![requests::read_write(PKI)],
                pki_sign: authorities.clone(),
                pki_create: authorities,
                ..requests::none()
            },
        }
    }

    fn run(context: PhaseContext, sub_phase: Option<String>) -> Result<PhaseReport, PhaseError> {
        let sub_phase = sub_phase.as_deref();
        check_sub_phase(sub_phase)?;
        let config = kubeforge_sdk::config(&context)?;
        let algorithm = kubeforge_sdk::certificates::key_algorithm(&config);
        let defs = certificate_specs(&config)?;

        if matches!(sub_phase, None | Some("all")) {
            let dir = config
                .cluster
                .certificates_dir
                .as_deref()
                .unwrap_or_default();
            info(format!("[certs] Using certificateDir folder {dir:?}"));
        }

        let mut authorities: HashMap<&'static str, Authority> = HashMap::new();
        let mut steps = Vec::new();
        for identity in CERTIFICATES.iter().filter(|i| selects(sub_phase, i.name)) {
            let Some(def) = defs.iter().find(|def| def.identity == identity) else {
                steps.push(Step::SkipForExternalEtcd(identity));
                continue;
            };
            steps.push(observe(def, algorithm, &mut authorities, &steps)?);
        }
        if selects(sub_phase, SERVICE_ACCOUNT) {
            steps.push(match PrivateKey::load(PKI, "sa.key")? {
                Some(key) => Step::ReuseServiceAccount {
                    public_key_missing: fs::read(PKI, "sa.pub")?.is_none(),
                    key,
                },
                None => Step::CreateServiceAccount(PrivateKey::generate(algorithm)),
            });
        }

        for step in steps {
            execute(step, &mut authorities)?;
        }

        let ca = match authorities.remove("ca") {
            Some(ca) => Some(ca),
            None => Authority::open("ca")?,
        };
        let outputs = match ca {
            Some(ca) => vec![(
                "ca-cert-hash".to_string(),
                pki::public_key_pin(&ca.certificate_pem())?,
            )],
            None => vec![],
        };
        Ok(PhaseReport { outputs })
    }
}

/// Reads what exists for one certificate and decides what to do with it.
fn observe(
    def: &CertDef,
    algorithm: KeyAlgorithm,
    authorities: &mut HashMap<&'static str, Authority>,
    earlier: &[Step],
) -> Result<Step, PhaseError> {
    let identity = def.identity;
    let Some(issuer) = identity.issuer else {
        // A CA is never recreated: if its certificate exists it is used, with or without key.
        return Ok(match Authority::open(identity.name)? {
            Some(ca) => {
                let has_key = ca.has_key();
                authorities.insert(identity.name, ca);
                Step::ReuseCa { identity, has_key }
            }
            None => Step::CreateCa(def.clone(), PrivateKey::generate(algorithm)),
        });
    };

    let ca_created_now = earlier
        .iter()
        .any(|step| matches!(step, Step::CreateCa(ca, _) if ca.identity.name == issuer));
    let ca_status = if ca_created_now {
        CaStatus::New
    } else {
        if !authorities.contains_key(issuer) {
            let ca = Authority::open(issuer)?.ok_or_else(|| {
                kubeforge_sdk::failed(format!(
                    "couldn't load the {issuer} certificate authority: it does not exist; \
                     run `kubeforge init phase certs {issuer}` first"
                ))
            })?;
            authorities.insert(issuer, ca);
        }
        if authorities[issuer].has_key() {
            CaStatus::WithKey
        } else {
            CaStatus::Keyless
        }
    };

    let crt = format!("{}.crt", identity.base_name);
    let existing = match kubeforge_sdk::read_text(PKI, &crt)? {
        None => ExistingLeaf::Absent,
        Some(_) if ca_created_now => ExistingLeaf::NotSignedByCa(format!(
            "the {issuer} certificate authority is being created by this run"
        )),
        Some(pem) => match authorities[issuer].verify(&pem) {
            Err(error) => ExistingLeaf::NotSignedByCa(describe(&error)),
            Ok(()) => {
                let key = PrivateKey::load(PKI, &format!("{}.key", identity.base_name))?;
                match key {
                    Some(key) if pki::key_matches(&pem, &key)? => ExistingLeaf::Usable,
                    _ => ExistingLeaf::KeyMissingOrMismatched,
                }
            }
        },
    };
    Ok(match leaf_action(identity, &existing, ca_status)? {
        LeafAction::Reuse => Step::ReuseLeaf(identity),
        LeafAction::Generate => Step::IssueLeaf(def.clone(), PrivateKey::generate(algorithm)),
    })
}

fn execute(
    step: Step,
    authorities: &mut HashMap<&'static str, Authority>,
) -> Result<(), PhaseError> {
    match step {
        Step::SkipForExternalEtcd(identity) => {
            let what = match identity.issuer {
                None => "certificate authority",
                Some(_) => "certificate",
            };
            info(format!(
                "[certs] External etcd mode: Skipping {} {what} generation",
                identity.base_name
            ));
        }
        Step::ReuseCa { identity, has_key } => {
            let keyless = if has_key { "" } else { " keyless" };
            info(format!(
                "[certs] Using existing {}{keyless} certificate authority",
                identity.base_name
            ));
        }
        Step::CreateCa(def, key) => {
            info(format!(
                "[certs] Generating {:?} certificate and key",
                def.identity.base_name
            ));
            let ca = Authority::create(def.identity.name, &def.spec, &key)?;
            authorities.insert(def.identity.name, ca);
        }
        Step::ReuseLeaf(identity) => {
            info(format!(
                "[certs] Using existing {} certificate and key on disk",
                identity.base_name
            ));
        }
        Step::IssueLeaf(def, key) => {
            // kubeadm warns about dropped SANs only when it builds a certificate, not on reuse.
            for warning in &def.warnings {
                warn(warning);
            }
            let base = def.identity.base_name;
            info(format!("[certs] Generating {base:?} certificate and key"));
            let issuer = def.identity.issuer.and_then(authority).map(|ca| ca.name);
            let ca = issuer
                .and_then(|name| authorities.get(name))
                .ok_or_else(|| kubeforge_sdk::failed(format!("certs: no CA for {base}")))?;
            let pem = ca.sign(&def.spec, &key)?;
            // Key first: a run killed in between leaves a key without its certificate, which
            // the next run replaces.
            key.store(PKI, &format!("{base}.key"))?;
            kubeforge_sdk::write_text(PKI, &format!("{base}.crt"), &pem, CERT_MODE)?;
            if let Some(line) = serving_line(&def) {
                info(line);
            }
        }
        Step::ReuseServiceAccount {
            public_key_missing,
            key,
        } => {
            info(format!(
                "[certs] Using the existing {SERVICE_ACCOUNT:?} key"
            ));
            // Only an interrupted run leaves sa.key without sa.pub; derive it again.
            if public_key_missing {
                write_public_key(&key)?;
            }
        }
        Step::CreateServiceAccount(key) => {
            info(format!(
                "[certs] Generating {SERVICE_ACCOUNT:?} key and public key"
            ));
            key.store(PKI, "sa.key")?;
            write_public_key(&key)?;
        }
    }
    Ok(())
}

fn write_public_key(key: &PrivateKey) -> Result<(), PhaseError> {
    kubeforge_sdk::write_text(PKI, "sa.pub", &key.public_key_pem()?, PUBLIC_KEY_MODE)
}

/// The message of a host error, for wrapping into a sentence.
fn describe(error: &PhaseError) -> String {
    match error {
        PhaseError::InvalidConfig(e) => format!("{}: {}", e.field, e.reason),
        PhaseError::Denied(d) => format!("{} denied: {}", d.capability, d.target),
        PhaseError::Conflict(message) | PhaseError::Failed(message) => message.clone(),
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
