//! The component lockfile: each slot's component digest and the capabilities granted to it when
//! the operator locked. While a lockfile exists, a run refuses a component whose digest changed or
//! whose requests go beyond what was locked, until the operator reviews and locks again.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::capabilities::Grant;
use crate::config::profile::GrantSpec;
use crate::effects::{Root, atomic};
use crate::runtime::bindings::CapabilityRequest;

pub const LOCK_API_VERSION: &str = "kubeforge.dev/v1alpha1";
pub const LOCK_KIND: &str = "ComponentLock";

/// The lockfile of a config file: `kubeforge.lock.yaml` beside it.
pub fn default_path(config: &Path) -> PathBuf {
    config.with_file_name("kubeforge.lock.yaml")
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Lockfile {
    pub api_version: String,
    pub kind: String,
    pub components: Vec<LockedComponent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockedComponent {
    pub slot: String,
    pub component: String,
    pub digest: String,
    #[serde(default)]
    pub grant: GrantSpec,
}

impl Lockfile {
    pub fn new(components: Vec<LockedComponent>) -> Self {
        Self {
            api_version: LOCK_API_VERSION.into(),
            kind: LOCK_KIND.into(),
            components,
        }
    }

    /// The lockfile at `path`, or none if there is none.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let Some(bytes) = Root::containing(path)?.read()? else {
            return Ok(None);
        };
        let text = String::from_utf8(bytes)
            .with_context(|| format!("{} is not UTF-8 text", path.display()))?;
        let lock: Lockfile = serde_saphyr::from_str(&text).with_context(|| {
            format!(
                "{} is not a kubeforge lockfile; remove it and run `kubeforge component lock` again",
                path.display()
            )
        })?;
        if lock.api_version != LOCK_API_VERSION || lock.kind != LOCK_KIND {
            bail!(
                "{}: expected apiVersion {LOCK_API_VERSION} and kind {LOCK_KIND}",
                path.display()
            );
        }
        Ok(Some(lock))
    }

    /// Write the lockfile atomically.
    pub fn write(&self, path: &Path) -> Result<()> {
        let value = serde_json::to_value(self).context("encoding the lockfile")?;
        let text = format!(
            "# Written by `kubeforge component lock`: the reviewed digest and grant of each phase\n# component. Lock again after reviewing a changed component.\n{}",
            kubeforge_api::yaml::to_string(&value)
        );
        atomic::write_file(path, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Refuse the component in `slot` unless it is what was locked: the same digest, under the
    /// same grant.
    pub fn check(
        &self,
        path: &Path,
        slot: &str,
        digest: &str,
        grant: &Grant,
        requests: &CapabilityRequest,
    ) -> Result<()> {
        let relock = "review it, then run `kubeforge component lock` to accept it";
        let Some(locked) = self.components.iter().find(|c| c.slot == slot) else {
            bail!(
                "refusing to run phase {slot}: it is not in the lockfile {}; {relock}",
                path.display()
            );
        };
        let locked_grant = Grant::from(&locked.grant);
        if locked.digest != digest {
            let missing = locked_grant.missing(requests);
            let more = if missing.is_empty() {
                String::new()
            } else {
                format!(
                    "; the new version also requests what the lock does not grant:\n  {}\n",
                    missing.join("\n  ")
                )
            };
            bail!(
                "refusing to run phase {slot}: its component changed since it was locked in {} (locked {}, now {digest}){more}; {relock}",
                path.display(),
                locked.digest
            );
        }
        if &locked_grant != grant {
            bail!(
                "refusing to run phase {slot}: its grant changed since it was locked in {}; {relock}",
                path.display()
            );
        }
        Ok(())
    }
}
