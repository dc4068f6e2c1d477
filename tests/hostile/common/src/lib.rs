//! What every hostile component shares: a `describe()` that asks only for what its grant holds
//! (so it passes the load-time check and attacks at call time), and a record of attempts.

use kubeforge_sdk::{CapabilityRequest, PhaseError, PhaseInfo, PhaseReport, SubPhase, requests};

/// A phase description asking for `fs` roots (name, writable) and the given sub-phases.
pub fn info(name: &str, fs: &[(&str, bool)], sub_phases: &[&str]) -> PhaseInfo {
    PhaseInfo {
        name: name.into(),
        description: format!("hostile test component: {name}"),
        sub_phases: sub_phases
            .iter()
            .map(|sub| SubPhase {
                name: sub.to_string(),
                description: format!("attack {sub}"),
            })
            .collect(),
        requests: CapabilityRequest {
            fs: fs
                .iter()
                .map(|(root, writable)| {
                    if *writable {
                        requests::read_write(root)
                    } else {
                        requests::read(root)
                    }
                })
                .collect(),
            ..requests::none()
        },
    }
}

/// Attacks that must each be refused. The phase fails with the first refusal, unless one
/// attack got through: then it fails with `ESCAPED: ...`, which the test reports.
#[derive(Default)]
pub struct Attempts {
    first: Option<PhaseError>,
    escaped: Vec<String>,
}

impl Attempts {
    /// `result` of the attack `what` must be an error.
    pub fn refused<T>(&mut self, what: &str, result: Result<T, PhaseError>) {
        match result {
            Ok(_) => self.escaped.push(what.to_string()),
            Err(error) => {
                if self.first.is_none() {
                    self.first = Some(error);
                }
            }
        }
    }

    /// The attack `what` got something it must not have.
    pub fn escaped(&mut self, what: impl Into<String>) {
        self.escaped.push(what.into());
    }

    /// A refusal that must be kept (when the attack itself is a success of a granted call).
    pub fn note(&mut self, error: PhaseError) {
        if self.first.is_none() {
            self.first = Some(error);
        }
    }

    pub fn finish(self) -> Result<PhaseReport, PhaseError> {
        if !self.escaped.is_empty() {
            return Err(PhaseError::Failed(format!(
                "ESCAPED: {}",
                self.escaped.join("; ")
            )));
        }
        Err(self
            .first
            .unwrap_or_else(|| PhaseError::Failed("ESCAPED: nothing was refused".into())))
    }
}
