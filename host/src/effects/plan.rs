//! The plan a `--dry-run` records and prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a planned file is, so the plan can summarise it without printing secrets.
#[derive(Debug, Clone)]
pub enum FileKind {
    /// A certificate, with a one-line summary (subject, issuer, SANs, not-after).
    Certificate(String),
    /// A private key: only its description is ever shown.
    PrivateKey(String),
    /// A kubeconfig with an embedded key: only its description is ever shown.
    Kubeconfig(String),
    /// Any other file: its text is shown.
    Document,
}

#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub contents: Vec<u8>,
    pub mode: u32,
    pub kind: FileKind,
}

#[derive(Debug, Clone)]
enum Step {
    Write {
        phase: String,
        path: PathBuf,
        file: PlannedFile,
    },
    CreateDir {
        phase: String,
        path: PathBuf,
        mode: u32,
    },
    Remove {
        phase: String,
        path: PathBuf,
    },
    ApiObject {
        phase: String,
        action: String,
        target: String,
        yaml: Option<String>,
    },
    /// Anything else done to the node, e.g. `restart service kubelet`.
    NodeAction {
        phase: String,
        what: String,
    },
}

/// Recorded effects, in order, with an overlay of the files they leave behind.
#[derive(Debug, Default)]
pub struct Plan {
    steps: Vec<Step>,
    /// `None` marks a planned removal.
    overlay: BTreeMap<PathBuf, Option<PlannedFile>>,
}

impl Plan {
    /// `Some` if the plan has written or removed `path`.
    pub fn lookup(&self, path: &Path) -> Option<Option<&PlannedFile>> {
        self.overlay.get(path).map(Option::as_ref)
    }

    pub fn record_write(
        &mut self,
        phase: &str,
        path: PathBuf,
        contents: Vec<u8>,
        mode: u32,
        kind: FileKind,
    ) {
        let file = PlannedFile {
            contents,
            mode,
            kind,
        };
        self.overlay.insert(path.clone(), Some(file.clone()));
        self.steps.push(Step::Write {
            phase: phase.into(),
            path,
            file,
        });
    }

    pub fn record_dir(&mut self, phase: &str, path: PathBuf, mode: u32) {
        self.steps.push(Step::CreateDir {
            phase: phase.into(),
            path,
            mode,
        });
    }

    pub fn record_removal(&mut self, phase: &str, path: PathBuf) {
        self.overlay.insert(path.clone(), None);
        self.steps.push(Step::Remove {
            phase: phase.into(),
            path,
        });
    }

    /// An API mutation: `action` (`apply`, `delete`) on `target` (`Kind namespace/name`).
    pub fn record_api_object(
        &mut self,
        phase: &str,
        action: &str,
        target: &str,
        yaml: Option<String>,
    ) {
        self.steps.push(Step::ApiObject {
            phase: phase.into(),
            action: action.into(),
            target: target.into(),
            yaml,
        });
    }

    /// An action on the node other than a file, e.g. `restart service kubelet`.
    pub fn record_node_action(&mut self, phase: &str, what: &str) {
        self.steps.push(Step::NodeAction {
            phase: phase.into(),
            what: what.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The plan as the operator reads it.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::Write { phase, path, file } => {
                    let _ = writeln!(
                        out,
                        "[dryrun] [{phase}] Would write file {:?} (mode {:04o})",
                        path.display().to_string(),
                        file.mode
                    );
                    match &file.kind {
                        FileKind::Certificate(summary) => {
                            let _ = writeln!(out, "    {summary}");
                        }
                        FileKind::PrivateKey(summary) | FileKind::Kubeconfig(summary) => {
                            let _ = writeln!(out, "    {summary} (contents withheld)");
                        }
                        FileKind::Document => {
                            for line in String::from_utf8_lossy(&file.contents).lines() {
                                let _ = writeln!(out, "    {line}");
                            }
                        }
                    }
                }
                Step::CreateDir { phase, path, mode } => {
                    let _ = writeln!(
                        out,
                        "[dryrun] [{phase}] Would create directory {:?} (mode {mode:04o})",
                        path.display().to_string()
                    );
                }
                Step::ApiObject {
                    phase,
                    action,
                    target,
                    yaml,
                } => {
                    let _ = writeln!(
                        out,
                        "[dryrun] [{phase}] Would perform action {} on {target}",
                        action.to_uppercase()
                    );
                    for line in yaml.iter().flat_map(|yaml| yaml.lines()) {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                Step::NodeAction { phase, what } => {
                    let _ = writeln!(out, "[dryrun] [{phase}] Would {what}");
                }
                Step::Remove { phase, path } => {
                    let _ = writeln!(
                        out,
                        "[dryrun] [{phase}] Would remove file {:?}",
                        path.display().to_string()
                    );
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_sees_writes_and_removals_and_render_withholds_secrets() {
        let mut plan = Plan::default();
        let key = PathBuf::from("/r/pki/ca.key");
        plan.record_write(
            "certs",
            key.clone(),
            b"SECRET".to_vec(),
            0o600,
            FileKind::PrivateKey("RSA-2048 private key".into()),
        );
        plan.record_write(
            "etcd",
            "/r/m/etcd.yaml".into(),
            b"kind: Pod\n".to_vec(),
            0o600,
            FileKind::Document,
        );
        assert_eq!(plan.lookup(&key).unwrap().unwrap().contents, b"SECRET");
        plan.record_removal("reset", key.clone());
        assert!(plan.lookup(&key).unwrap().is_none());
        let text = plan.render();
        assert!(!text.contains("SECRET"));
        assert!(text.contains("RSA-2048 private key (contents withheld)"));
        assert!(text.contains("    kind: Pod"));
        assert!(text.contains("Would remove file \"/r/pki/ca.key\""));
        plan.record_api_object(
            "upload-config",
            "apply",
            "ConfigMap kube-system/x",
            Some("kind: ConfigMap\n".into()),
        );
        let text = plan.render();
        assert!(text.contains("[dryrun] [upload-config] Would perform action APPLY on ConfigMap kube-system/x\n    kind: ConfigMap\n"));
        plan.record_node_action("kubelet-start", "restart service kubelet");
        assert!(
            plan.render()
                .ends_with("[dryrun] [kubelet-start] Would restart service kubelet\n")
        );
    }
}
