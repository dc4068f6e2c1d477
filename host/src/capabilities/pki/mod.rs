//! `kubeforge:phase/pki`: keys, CAs and credentials as handles. Private key bytes stay here;
//! the host writes them to disk and into kubeconfigs itself.

pub mod certs;
pub mod keys;
pub mod kubeconfig;
pub mod seal;

use std::sync::Arc;

use rcgen::KeyPair;
use wasmtime::component::Resource;

use crate::capabilities::{Access, PhaseState, failed};
use crate::effects::{Effects, FileKind, RootedPath};
use crate::runtime::bindings::PhaseError;
use crate::runtime::bindings::kubeforge::phase::pki::{
    CertificateInfo, CertificateSpec, Host, HostAuthority, HostPrivateKey, KeyAlgorithm,
    KubeconfigSpec,
};

pub use keys::KeyHandle;

/// A CA as a guest holds it: its certificate, and its key if present (kubeadm's external-CA
/// mode has none).
pub struct AuthorityHandle {
    name: String,
    certificate_pem: String,
    key: Option<Arc<KeyPair>>,
}

/// The certificate and key files of a CA under the `pki` root.
fn ca_files(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "ca" => Some(("ca.crt", "ca.key")),
        "front-proxy-ca" => Some(("front-proxy-ca.crt", "front-proxy-ca.key")),
        "etcd-ca" => Some(("etcd/ca.crt", "etcd/ca.key")),
        _ => None,
    }
}

fn is_ca_certificate(contents: &[u8]) -> bool {
    std::str::from_utf8(contents)
        .ok()
        .and_then(|text| certs::inspect(text).ok())
        .is_some_and(|info| info.is_ca)
}

/// Refuse to replace a CA certificate, a CA key, or any file holding a private key through a
/// path that is not meant for it: a CA is never overwritten.
pub fn refuse_clobbering(effects: &Effects, path: &RootedPath) -> Result<(), PhaseError> {
    let existing = effects.read(path).map_err(failed)?;
    let Some(existing) = existing else {
        return Ok(());
    };
    if is_ca_certificate(&existing) {
        return Err(PhaseError::Conflict(format!(
            "{} is a CA certificate; kubeforge never overwrites a CA",
            path.display()
        )));
    }
    if let Some(certificate) = ca_certificate_of_key(effects, path)? {
        return Err(PhaseError::Conflict(format!(
            "{} is the key of the CA {}; kubeforge never overwrites a CA",
            path.display(),
            certificate.display()
        )));
    }
    Ok(())
}

/// The CA certificate beside `path` if `path` is that CA's key (`X.key` next to a CA `X.crt`).
fn ca_certificate_of_key(
    effects: &Effects,
    path: &RootedPath,
) -> Result<Option<RootedPath>, PhaseError> {
    if path.extension().is_none_or(|e| e != "key") {
        return Ok(None);
    }
    let certificate = path.with_extension("crt");
    let is_ca = effects
        .read(&certificate)
        .map_err(failed)?
        .is_some_and(|c| is_ca_certificate(&c));
    Ok(is_ca.then_some(certificate))
}

impl PhaseState {
    /// A CA file: the pki grant (sign or create with that CA) covers it, not the fs grant.
    fn ca_file(&self, relative: &str) -> Result<RootedPath, PhaseError> {
        self.locate("pki", relative)
    }

    fn read_key(&self, path: &RootedPath) -> Result<Option<KeyPair>, PhaseError> {
        let Some(bytes) = self.host.effects.read(path).map_err(failed)? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes).map_err(|_| {
            PhaseError::Failed(format!("{} is not a PEM private key", path.display()))
        })?;
        KeyPair::from_pem(&text).map(Some).map_err(|e| {
            PhaseError::Failed(format!(
                "{} is not a usable private key: {e}",
                path.display()
            ))
        })
    }

    fn write_key(&self, path: &RootedPath, key: &KeyPair) -> Result<(), PhaseError> {
        let pem = keys::to_pem(key).map_err(failed)?;
        self.host
            .effects
            .write(
                &self.origin,
                path,
                pem.into_bytes(),
                0o600,
                FileKind::PrivateKey(keys::describe(key)),
            )
            .map_err(failed)
    }

    fn key_of(
        &self,
        key: &Resource<KeyHandle>,
    ) -> wasmtime::Result<Result<Arc<KeyPair>, PhaseError>> {
        Ok(self.table.get(key)?.key().map_err(failed))
    }

    fn authority(
        &self,
        authority: &Resource<AuthorityHandle>,
    ) -> wasmtime::Result<&AuthorityHandle> {
        Ok(self.table.get(authority)?)
    }
}

/// `?` for the inner `Result<_, PhaseError>` of a host call.
macro_rules! try_phase {
    ($e:expr) => {
        match $e {
            Ok(value) => value,
            Err(error) => return Ok(Err(error)),
        }
    };
}

impl HostPrivateKey for PhaseState {
    fn generate(&mut self, algorithm: KeyAlgorithm) -> wasmtime::Result<Resource<KeyHandle>> {
        Ok(self.table.push(KeyHandle::generate(algorithm))?)
    }

    fn load(
        &mut self,
        root: String,
        path: String,
    ) -> wasmtime::Result<Result<Option<Resource<KeyHandle>>, PhaseError>> {
        let file = try_phase!(self.resolve(&root, &path, Access::Read));
        // A CA key is reached only through `authority`, which the pki grant governs; as a
        // plain handle it could be stored somewhere the CA's grant does not cover.
        if try_phase!(ca_certificate_of_key(&self.host.effects, &file)).is_some() {
            return Ok(Err(self.deny(
                "pki",
                format!("load {root}:{path} (a CA key: open the CA with pki.authority instead)"),
            )));
        }
        let Some(key) = try_phase!(self.read_key(&file)) else {
            return Ok(Ok(None));
        };
        Ok(Ok(Some(self.table.push(KeyHandle::ready(key))?)))
    }

    fn store(
        &mut self,
        key: Resource<KeyHandle>,
        root: String,
        path: String,
    ) -> wasmtime::Result<Result<(), PhaseError>> {
        let key = try_phase!(self.key_of(&key)?);
        let file = try_phase!(self.resolve(&root, &path, Access::ReadWrite));
        try_phase!(refuse_clobbering(&self.host.effects, &file));
        Ok(self.write_key(&file, &key))
    }

    fn public_key_pem(
        &mut self,
        key: Resource<KeyHandle>,
    ) -> wasmtime::Result<Result<String, PhaseError>> {
        let key = try_phase!(self.key_of(&key)?);
        Ok(Ok(key.public_key_pem()))
    }

    fn drop(&mut self, key: Resource<KeyHandle>) -> wasmtime::Result<()> {
        self.table.delete(key)?;
        Ok(())
    }
}

impl HostAuthority for PhaseState {
    fn open(
        &mut self,
        name: String,
    ) -> wasmtime::Result<Result<Option<Resource<AuthorityHandle>>, PhaseError>> {
        if !self.grant.pki_sign.contains(&name) {
            return Ok(Err(self.deny("pki", format!("open CA {name}"))));
        }
        let Some((certificate_file, key_file)) = ca_files(&name) else {
            return Ok(Err(PhaseError::Failed(format!(
                "there is no CA named {name:?}"
            ))));
        };
        let certificate_path = try_phase!(self.ca_file(certificate_file));
        let Some(certificate) =
            try_phase!(self.host.effects.read(&certificate_path).map_err(failed))
        else {
            return Ok(Ok(None));
        };
        let certificate_pem =
            try_phase!(
                String::from_utf8(certificate).map_err(|_| PhaseError::Failed(format!(
                    "{} is not a PEM certificate",
                    certificate_path.display()
                )))
            );
        match certs::inspect(&certificate_pem) {
            Ok(info) if info.is_ca => {}
            Ok(_) => {
                return Ok(Err(PhaseError::Conflict(format!(
                    "{} is not a CA certificate",
                    certificate_path.display()
                ))));
            }
            Err(e) => {
                return Ok(Err(PhaseError::Failed(format!(
                    "{}: {e:#}",
                    certificate_path.display()
                ))));
            }
        }
        let key_path = try_phase!(self.ca_file(key_file));
        let key = try_phase!(self.read_key(&key_path)).map(Arc::new);
        if let Some(key) = &key
            && !try_phase!(certs::key_matches(&certificate_pem, key).map_err(failed))
        {
            return Ok(Err(PhaseError::Conflict(format!(
                "{} does not belong to {}",
                key_path.display(),
                certificate_path.display()
            ))));
        }
        Ok(Ok(Some(self.table.push(AuthorityHandle {
            name,
            certificate_pem,
            key,
        })?)))
    }

    fn create(
        &mut self,
        name: String,
        spec: CertificateSpec,
        key: Resource<KeyHandle>,
    ) -> wasmtime::Result<Result<Resource<AuthorityHandle>, PhaseError>> {
        if !self.grant.pki_create.contains(&name) {
            return Ok(Err(self.deny("pki", format!("create CA {name}"))));
        }
        let Some((certificate_file, key_file)) = ca_files(&name) else {
            return Ok(Err(PhaseError::Failed(format!(
                "there is no CA named {name:?}"
            ))));
        };
        let certificate_path = try_phase!(self.ca_file(certificate_file));
        let key_path = try_phase!(self.ca_file(key_file));
        // The certificate is written last, so its presence means the CA is complete and may have
        // signed certificates; a key without a certificate is the remnant of an interrupted run.
        if try_phase!(self.host.effects.read(&certificate_path).map_err(failed)).is_some() {
            return Ok(Err(PhaseError::Conflict(format!(
                "the CA {name} already exists at {}; kubeforge never overwrites a CA",
                certificate_path.display()
            ))));
        }
        let key = try_phase!(self.key_of(&key)?);
        let certificate_pem =
            try_phase!(certs::self_sign_ca(&spec, &key, self.host.started).map_err(failed));
        try_phase!(self.write_key(&key_path, &key));
        let summary = try_phase!(certs::summary(&certificate_pem).map_err(failed));
        try_phase!(
            self.host
                .effects
                .write(
                    &self.origin,
                    &certificate_path,
                    certificate_pem.clone().into_bytes(),
                    0o644,
                    FileKind::Certificate(summary)
                )
                .map_err(failed)
        );
        Ok(Ok(self.table.push(AuthorityHandle {
            name,
            certificate_pem,
            key: Some(key),
        })?))
    }

    fn certificate_pem(
        &mut self,
        authority: Resource<AuthorityHandle>,
    ) -> wasmtime::Result<String> {
        Ok(self.authority(&authority)?.certificate_pem.clone())
    }

    fn has_key(&mut self, authority: Resource<AuthorityHandle>) -> wasmtime::Result<bool> {
        Ok(self.authority(&authority)?.key.is_some())
    }

    fn sign(
        &mut self,
        authority: Resource<AuthorityHandle>,
        spec: CertificateSpec,
        key: Resource<KeyHandle>,
    ) -> wasmtime::Result<Result<String, PhaseError>> {
        let key = try_phase!(self.key_of(&key)?);
        let ca = self.authority(&authority)?;
        let Some(ca_key) = &ca.key else {
            return Ok(Err(PhaseError::Conflict(format!(
                "the key of CA {} is not present (external CA mode); provide {} yourself",
                ca.name, spec.common_name
            ))));
        };
        Ok(
            certs::sign(&spec, &key, &ca.certificate_pem, ca_key, self.host.started)
                .map_err(failed),
        )
    }

    fn verify(
        &mut self,
        authority: Resource<AuthorityHandle>,
        certificate_pem: String,
    ) -> wasmtime::Result<Result<(), PhaseError>> {
        let ca = self.authority(&authority)?;
        Ok(
            certs::verify(&certificate_pem, &ca.certificate_pem).map_err(|e| {
                PhaseError::Conflict(format!(
                    "the certificate is not signed by CA {}: {e:#}",
                    ca.name
                ))
            }),
        )
    }

    fn drop(&mut self, authority: Resource<AuthorityHandle>) -> wasmtime::Result<()> {
        self.table.delete(authority)?;
        Ok(())
    }
}

impl Host for PhaseState {
    fn inspect(
        &mut self,
        certificate_pem: String,
    ) -> wasmtime::Result<Result<CertificateInfo, PhaseError>> {
        Ok(certs::inspect(&certificate_pem).map_err(failed))
    }

    fn key_matches(
        &mut self,
        certificate_pem: String,
        key: Resource<KeyHandle>,
    ) -> wasmtime::Result<Result<bool, PhaseError>> {
        let key = try_phase!(self.key_of(&key)?);
        Ok(certs::key_matches(&certificate_pem, &key).map_err(failed))
    }

    fn public_key_pin(
        &mut self,
        certificate_pem: String,
    ) -> wasmtime::Result<Result<String, PhaseError>> {
        Ok(certs::public_key_pin(&certificate_pem).map_err(failed))
    }

    fn store_kubeconfig(
        &mut self,
        root: String,
        path: String,
        spec: KubeconfigSpec,
        key: Resource<KeyHandle>,
    ) -> wasmtime::Result<Result<(), PhaseError>> {
        let key = try_phase!(self.key_of(&key)?);
        let file = try_phase!(self.resolve(&root, &path, Access::ReadWrite));
        try_phase!(refuse_clobbering(&self.host.effects, &file));
        let key_pem = try_phase!(keys::to_pem(&key).map_err(failed));
        let text = try_phase!(kubeconfig::render(&spec, &key_pem).map_err(failed));
        let summary = format!(
            "kubeconfig for user {} on cluster {} at {}",
            spec.user_name, spec.cluster_name, spec.server
        );
        Ok(self
            .host
            .effects
            .write(
                &self.origin,
                &file,
                text.into_bytes(),
                0o600,
                FileKind::Kubeconfig(summary),
            )
            .map_err(failed))
    }

    fn inspect_kubeconfig(
        &mut self,
        root: String,
        path: String,
    ) -> wasmtime::Result<Result<Option<KubeconfigSpec>, PhaseError>> {
        let file = try_phase!(self.resolve(&root, &path, Access::Read));
        let Some(bytes) = try_phase!(self.host.effects.read(&file).map_err(failed)) else {
            return Ok(Ok(None));
        };
        let text = String::from_utf8_lossy(&bytes);
        Ok(kubeconfig::inspect(&text).map(Some).map_err(|e| {
            // The parser's error quotes the file: not when it holds private key material.
            let why = if super::fs::holds_private_key(&bytes) {
                "it holds private key material and cannot be read as one".to_string()
            } else {
                format!("{e:#}")
            };
            PhaseError::Failed(format!(
                "{} is not a usable kubeconfig: {why}",
                file.display()
            ))
        }))
    }

    fn seal_for_upload(
        &mut self,
        root: String,
        paths: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<Option<Vec<u8>>>, PhaseError>> {
        if !self.grant.pki_seal {
            return Ok(Err(
                self.deny("pki", format!("seal {root}:{}", paths.join(",")))
            ));
        }
        if paths.len() > MAX_SEALED_FILES {
            return Ok(Err(PhaseError::Failed(format!(
                "seal-for-upload: {} files, more than the {MAX_SEALED_FILES} allowed",
                paths.len()
            ))));
        }
        let started = std::time::Instant::now();
        let key = try_phase!(self.host.certificate_key.get().map_err(failed));
        let mut sealed = Vec::with_capacity(paths.len());
        for path in &paths {
            let file = try_phase!(self.resolve(&root, path, Access::Read));
            let contents = try_phase!(self.host.effects.read(&file).map_err(failed));
            sealed.push(match contents {
                Some(bytes) => Some(try_phase!(seal::seal(key, &bytes).map_err(failed))),
                None => None,
            });
        }
        if let Some(journal) = self.host.effects.journal() {
            journal.append(
                &self.origin,
                crate::effects::Entry {
                    capability: "pki",
                    operation: "seal",
                    target: &format!("{root}:{}", paths.join(",")),
                    outcome: crate::effects::Outcome::Ok,
                    detail: None,
                    duration: started.elapsed(),
                },
            );
        }
        Ok(Ok(sealed))
    }
}

/// How many files one `seal-for-upload` call may name (kubeadm uploads at most eight).
const MAX_SEALED_FILES: usize = 16;
