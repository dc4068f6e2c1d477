//! The `upload-certs` phase (`kubeadm init phase upload-certs --upload-certs`): kubeadm's
//! `copycerts.UploadCerts`. The cluster CAs, the service-account key pair and the etcd CA (or,
//! with external etcd, its client certificate) go into the Secret `kube-system/kubeadm-certs`,
//! each sealed by the host under the run's certificate key, so that `kubeadm join
//! --control-plane --certificate-key <key>` can fetch them. The Secret is owned by a short-lived
//! bootstrap token Secret (2h) that carries no usages: when the token cleaner removes the token,
//! garbage collection removes the certificates with it. A Role and RoleBinding let the default
//! node bootstrap token group read that one Secret.
//!
//! The certificate key never reaches this phase: it gets ciphertext from `pki.seal-for-upload`,
//! and the host prints the key after the phase.

use std::path::{Component, Path};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::BootstrapToken;
use kubeforge_sdk::bootstrap_token;
use kubeforge_sdk::objects::{NODE_BOOTSTRAP_TOKEN_GROUP, core_rule, group, role, role_binding};
use kubeforge_sdk::{FieldError, PhaseError};
use serde_json::{Map, Value, json};

pub const NAMESPACE: &str = "kube-system";
/// kubeadm's `KubeadmCertsSecret`.
pub const KUBEADM_CERTS: &str = "kubeadm-certs";
/// kubeadm's `KubeadmCertsClusterRoleName`: the Role and RoleBinding that let joining control
/// planes read kubeadm-certs.
pub const KUBEADM_CERTS_RBAC: &str = "kubeadm:kubeadm-certs";
/// The description kubeadm gives the token that owns kubeadm-certs.
pub const TOKEN_DESCRIPTION: &str = "Proxy for managing TTL for the kubeadm-certs secret";
/// kubeadm's `DefaultCertTokenDuration`.
pub const TOKEN_TTL: Duration = Duration::from_secs(2 * 60 * 60);
/// What a dry run puts where the API server would assign the owner token's uid.
pub const PLANNED_UID: &str = "(assigned by the API server)";

/// The files kubeadm uploads with local etcd, relative to the certificates directory.
const LOCAL_FILES: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "sa.pub",
    "sa.key",
    "etcd/ca.crt",
    "etcd/ca.key",
];

/// One value of kubeadm-certs: its key, and the file under the `pki` root whose sealed bytes it
/// holds (none: no file to read, an empty value as kubeadm stores a missing file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    pub key: String,
    pub path: Option<String>,
}

/// kubeadm's `certsToTransfer` with its Secret key names (`/` becomes `-`). With external etcd
/// kubeadm uploads `etcd.external.caFile`/`certFile`/`keyFile` wherever they are; this phase
/// reads only under the certificates directory (its `pki` root), so a file elsewhere is refused
/// by field. An empty field is uploaded as an empty value, as kubeadm does.
pub fn certs_to_transfer(config: &EffectiveConfig) -> Result<Vec<Upload>, PhaseError> {
    let local = |path: &str| Upload {
        key: path.replace('/', "-"),
        path: Some(path.to_string()),
    };
    let mut uploads: Vec<Upload> = LOCAL_FILES[..6].iter().map(|p| local(p)).collect();
    match &config.cluster.etcd.external {
        None => uploads.extend(LOCAL_FILES[6..].iter().map(|p| local(p))),
        Some(external) => {
            let dir = config.certificates_dir();
            for (key, file, field) in [
                (
                    "external-etcd-ca.crt",
                    &external.ca_file,
                    "etcd.external.caFile",
                ),
                (
                    "external-etcd.crt",
                    &external.cert_file,
                    "etcd.external.certFile",
                ),
                (
                    "external-etcd.key",
                    &external.key_file,
                    "etcd.external.keyFile",
                ),
            ] {
                let path = if file.is_empty() {
                    None
                } else {
                    Some(under(dir, file).ok_or_else(|| {
                        PhaseError::InvalidConfig(FieldError {
                            field: field.into(),
                            reason: format!(
                                "{file} is not under the certificates directory {dir}: the \
                                 upload-certs phase reads only files there; move the file \
                                 under {dir} to upload it"
                            ),
                        })
                    })?)
                };
                uploads.push(Upload {
                    key: key.into(),
                    path,
                });
            }
        }
    }
    Ok(uploads)
}

/// `file` relative to `dir`, if it lies below it (no `..` on the way).
fn under(dir: &str, file: &str) -> Option<String> {
    let relative = Path::new(file).strip_prefix(Path::new(dir)).ok()?;
    let mut parts = Vec::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The characters of a bootstrap token.
const TOKEN_CHARS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// `len` characters of `[a-z0-9]`, uniformly from the bytes `fill` provides (bytes of 252 and
/// above are dropped so that each character is equally likely).
pub fn token_chars(
    len: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<(), String>,
) -> Result<String, String> {
    let mut chars = String::with_capacity(len);
    let mut buffer = [0u8; 32];
    while chars.len() < len {
        fill(&mut buffer)?;
        for byte in buffer.iter().filter(|b| **b < 252) {
            if chars.len() < len {
                chars.push(char::from(TOKEN_CHARS[usize::from(byte % 36)]));
            }
        }
    }
    Ok(chars)
}

/// A fresh random token id (6 characters) and secret (16), as kubeadm's
/// `GenerateBootstrapToken`.
pub fn random_token() -> Result<(String, String), String> {
    let fill = |buffer: &mut [u8]| {
        getrandom::fill(buffer).map_err(|e| format!("no random bytes for the token: {e}"))
    };
    Ok((token_chars(6, fill)?, token_chars(16, fill)?))
}

/// The bootstrap token that owns kubeadm-certs: a description and a TTL, and no usages or
/// groups, so it authenticates nobody (kubeadm's `createShortLivedBootstrapToken`).
pub fn owner_token(id: &str, secret: &str) -> BootstrapToken {
    BootstrapToken {
        token: Some(format!("{id}.{secret}")),
        description: Some(TOKEN_DESCRIPTION.into()),
        ttl: Some(TOKEN_TTL.into()),
        ..BootstrapToken::default()
    }
}

/// The Secret of [`owner_token`], expiring `TOKEN_TTL` after `now` (Unix seconds).
pub fn token_secret(id: &str, secret: &str, now: i64) -> Result<Value, String> {
    bootstrap_token::token_secret(&owner_token(id, secret), 0, now)
}

/// The kubeadm-certs Secret with `values` (key, sealed bytes), controlled by the token Secret
/// `owner` with `owner_uid` (kubeadm's `NewControllerRef`).
pub fn certs_secret(values: &[(String, Vec<u8>)], owner: &str, owner_uid: &str) -> Value {
    let data: Map<String, Value> = values
        .iter()
        .map(|(key, bytes)| (key.clone(), Value::String(STANDARD.encode(bytes))))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": KUBEADM_CERTS,
            "namespace": NAMESPACE,
            "ownerReferences": [{
                "apiVersion": "v1",
                "kind": "Secret",
                "name": owner,
                "uid": owner_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "type": "Opaque",
        "data": data,
    })
}

/// kubeadm's `createRBAC`: get on kubeadm-certs for the default node bootstrap token group.
pub fn rbac() -> Vec<Value> {
    vec![
        role(
            NAMESPACE,
            KUBEADM_CERTS_RBAC,
            vec![core_rule(&["get"], &["secrets"], &[KUBEADM_CERTS])],
        ),
        role_binding(
            NAMESPACE,
            KUBEADM_CERTS_RBAC,
            KUBEADM_CERTS_RBAC,
            vec![group(NODE_BOOTSTRAP_TOKEN_GROUP)],
        ),
    ]
}

#[cfg(target_arch = "wasm32")]
mod component {
    use std::time::{SystemTime, UNIX_EPOCH};

    use kubeforge_sdk::objects::{apply, patch};
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, info,
        pki, requests,
    };

    use crate::{KUBEADM_CERTS, NAMESPACE};

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "upload-certs".into(),
                description: "Upload certificates to kubeadm-certs".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    // The files to seal; the host refuses to hand key files to the phase.
                    fs: vec![requests::read("pki")],
                    pki_seal: true,
                    kube: vec![
                        requests::rule(
                            &["apply"],
                            &[
                                "secrets",
                                "rbac.authorization.k8s.io/roles",
                                "rbac.authorization.k8s.io/rolebindings",
                            ],
                            &[NAMESPACE],
                        ),
                        // To hand an existing kubeadm-certs to the new token.
                        requests::rule(&["patch"], &["secrets"], &[NAMESPACE]),
                    ],
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase("upload-certs", sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            let uploads = crate::certs_to_transfer(&config)?;
            info(format!(
                "[upload-certs] Storing the certificates in Secret {KUBEADM_CERTS:?} in the {NAMESPACE:?} Namespace"
            ));
            // Sealed before the token exists, so that a file that cannot be read leaves no
            // stray token behind.
            let paths: Vec<String> = uploads.iter().filter_map(|u| u.path.clone()).collect();
            let mut sealed = pki::seal_for_upload("pki", &paths)?.into_iter();
            let mut values = Vec::with_capacity(uploads.len());
            for upload in uploads {
                let value = match upload.path {
                    Some(_) => sealed.next().flatten().unwrap_or_default(),
                    None => Vec::new(),
                };
                values.push((upload.key, value));
            }

            // A new token each run, as kubeadm: kubeadm-certs moves to it and lives 2h more.
            let (id, secret) = crate::random_token().map_err(failed)?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|e| failed(format!("the clock is before 1970: {e}")))?
                .as_secs();
            let now = i64::try_from(now).map_err(|_| failed("the clock is out of range"))?;
            let token = apply(&crate::token_secret(&id, &secret, now).map_err(failed)?)?;
            let owner = format!("bootstrap-token-{id}");
            let uid = match token["metadata"]["uid"].as_str() {
                Some(uid) => uid.to_string(),
                None if context.dry_run => crate::PLANNED_UID.to_string(),
                None => {
                    return Err(failed(format!(
                        "the API server returned Secret {NAMESPACE}/{owner} without a uid"
                    )));
                }
            };
            let certs = crate::certs_secret(&values, &owner, &uid);
            // kubeadm replaces kubeadm-certs whole: an existing one (perhaps owned by an older
            // token, kubeadm's own included) first names only the new token as its owner, since
            // an object has at most one controller; then it is applied.
            patch(
                "v1",
                "Secret",
                Some(NAMESPACE),
                KUBEADM_CERTS,
                &serde_json::json!({"metadata": {"ownerReferences": certs["metadata"]["ownerReferences"]}}),
            )?;
            apply(&certs)?;
            for object in crate::rbac() {
                apply(&object)?;
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
