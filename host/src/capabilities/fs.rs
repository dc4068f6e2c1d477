//! `kubeforge:phase/fs`: files under logical roots, through the effects layer.

use crate::capabilities::{Access, PhaseState, failed, pki};
use crate::effects::FileKind;
use crate::runtime::bindings::PhaseError;
use crate::runtime::bindings::kubeforge::phase::fs::Host;

/// Bytes one file written by a phase may have.
const MAX_FILE: usize = 16 * 1024 * 1024;

/// Whether `contents` hold private key material, which never goes to a guest.
pub fn holds_private_key(contents: &[u8]) -> bool {
    let text = String::from_utf8_lossy(contents);
    text.contains("PRIVATE KEY-----") || text.contains("client-key-data:")
}

impl Host for PhaseState {
    fn read(
        &mut self,
        root: String,
        path: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, PhaseError>> {
        let file = match self.resolve(&root, &path, Access::Read) {
            Ok(file) => file,
            Err(e) => return Ok(Err(e)),
        };
        let contents = match self.host.effects.read(&file) {
            Ok(contents) => contents,
            Err(e) => return Ok(Err(failed(e))),
        };
        if contents.as_deref().is_some_and(holds_private_key) {
            return Ok(Err(self.deny(
                "fs",
                format!(
                    "read {root}:{path} (it holds private key material: use the pki interface)"
                ),
            )));
        }
        Ok(Ok(contents))
    }

    fn exists(&mut self, root: String, path: String) -> wasmtime::Result<Result<bool, PhaseError>> {
        let file = match self.resolve(&root, &path, Access::Read) {
            Ok(file) => file,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self.host.effects.exists(&file).map_err(failed))
    }

    fn write(
        &mut self,
        root: String,
        path: String,
        contents: Vec<u8>,
        mode: u32,
    ) -> wasmtime::Result<Result<(), PhaseError>> {
        if contents.len() > MAX_FILE {
            return Ok(Err(PhaseError::Failed(format!(
                "{root}:{path} is {} bytes; a phase may write at most {MAX_FILE}",
                contents.len()
            ))));
        }
        let file = match self.resolve(&root, &path, Access::ReadWrite) {
            Ok(file) => file,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = pki::refuse_clobbering(&self.host.effects, &file) {
            return Ok(Err(e));
        }
        let kind = match std::str::from_utf8(&contents) {
            Ok(text) if text.contains("-----BEGIN CERTIFICATE-----") => FileKind::Certificate(
                pki::certs::summary(text)
                    .unwrap_or_else(|e| format!("unreadable certificate: {e:#}")),
            ),
            _ => FileKind::Document,
        };
        Ok(self
            .host
            .effects
            .write(&self.origin, &file, contents, mode & 0o7777, kind)
            .map_err(failed))
    }

    fn create_dir(
        &mut self,
        root: String,
        path: String,
        mode: u32,
    ) -> wasmtime::Result<Result<(), PhaseError>> {
        let dir = match self.resolve(&root, &path, Access::ReadWrite) {
            Ok(dir) => dir,
            Err(e) => return Ok(Err(e)),
        };
        Ok(self
            .host
            .effects
            .create_dir(&self.origin, &dir, mode & 0o7777)
            .map_err(failed))
    }

    fn remove(&mut self, root: String, path: String) -> wasmtime::Result<Result<bool, PhaseError>> {
        let file = match self.resolve(&root, &path, Access::ReadWrite) {
            Ok(file) => file,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = pki::refuse_clobbering(&self.host.effects, &file) {
            return Ok(Err(e));
        }
        Ok(self
            .host
            .effects
            .remove(&self.origin, &file)
            .map_err(failed))
    }
}
