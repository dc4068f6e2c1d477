//! Compiled components on disk, keyed by the component's digest and the engine's compatibility
//! hash, so a second run deserialises (microseconds) instead of compiling (tens of milliseconds).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::effects::atomic;

pub struct ArtifactCache {
    dir: Option<PathBuf>,
    engine_hash: u64,
}

impl ArtifactCache {
    pub fn new(dir: Option<PathBuf>, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_hash: hasher.finish(),
        }
    }

    fn path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .as_ref()
            .map(|dir| dir.join(format!("{hex}-{:016x}.cwasm", self.engine_hash)))
    }

    /// The compiled component for `wasm`, from the cache or compiled now and cached.
    pub fn load(&self, engine: &Engine, digest: &str, wasm: &[u8]) -> Result<Component> {
        let path = self.path(digest);
        if let Some(path) = &path
            && path.exists()
        {
            // SAFETY: the cache holds only artifacts this host serialised for an engine with the
            // same compatibility hash (part of the file name); a file that fails to deserialise
            // is recompiled and replaced below.
            match unsafe { Component::deserialize_file(engine, path) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "recompiling an unreadable cached component: {e:#}")
                }
            }
        }
        let component = Component::new(engine, wasm).map_err(|e| anyhow!("compiling: {e:#}"))?;
        if let Some(path) = &path {
            let stored = component
                .serialize()
                .map_err(|e| anyhow!("{e:#}"))
                .and_then(|bytes| atomic::write_file(path, &bytes, 0o644));
            if let Err(e) = stored {
                tracing::warn!(path = %path.display(), "could not cache a compiled component: {e:#}");
            }
        }
        Ok(component)
    }
}
