//! The phase tree of `init`, in kubeadm's order, and the runner that fills each slot with a
//! component, checks it against its grant and runs it.

pub mod stock;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};

use crate::capabilities::kube::KubeAccess;
use crate::capabilities::{Grant, HostContext, PhaseState, Roots};
use crate::effects::{Effects, Journal, Origin, Plan};
use crate::runtime::bindings::{PhaseContext, PhaseError};
use crate::runtime::{Limits, LoadedPhase, RunError, Runtime};
use kubeforge_api::EffectiveConfig;

/// What fills a slot of the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filling {
    /// A stock component.
    Component(&'static str),
    /// Nothing in this build: `init` reports it and, if later phases depend on it, stops.
    Unavailable { blocks_later_phases: bool },
}

/// One top-level phase of `init`.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    pub name: &'static str,
    pub description: &'static str,
    pub filling: Filling,
}

/// kubeadm's `init` phases, in order.
pub const INIT_PHASES: &[Slot] = &[
    Slot {
        name: "preflight",
        description: "Run pre-flight checks",
        filling: Filling::Unavailable {
            blocks_later_phases: false,
        },
    },
    Slot {
        name: "certs",
        description: "Certificate generation",
        filling: Filling::Component("certs"),
    },
    Slot {
        name: "kubeconfig",
        description: "Generate all kubeconfig files necessary to establish the control plane and the admin kubeconfig file",
        filling: Filling::Component("kubeconfig"),
    },
    Slot {
        name: "etcd",
        description: "Generate static Pod manifest file for local etcd",
        filling: Filling::Component("etcd"),
    },
    Slot {
        name: "control-plane",
        description: "Generate all static Pod manifest files necessary to establish the control plane",
        filling: Filling::Component("control-plane"),
    },
    Slot {
        name: "kubelet-start",
        description: "Write kubelet settings and (re)start the kubelet",
        filling: Filling::Unavailable {
            blocks_later_phases: true,
        },
    },
    Slot {
        name: "wait-control-plane",
        description: "Wait for the control plane to start",
        filling: Filling::Unavailable {
            blocks_later_phases: true,
        },
    },
    Slot {
        name: "upload-config",
        description: "Upload the kubeadm and kubelet configuration to a ConfigMap",
        filling: Filling::Component("upload-config"),
    },
    Slot {
        name: "upload-certs",
        description: "Upload certificates to kubeadm-certs",
        filling: Filling::Unavailable {
            blocks_later_phases: true,
        },
    },
    Slot {
        name: "mark-control-plane",
        description: "Mark a node as a control-plane",
        filling: Filling::Component("mark-control-plane"),
    },
    Slot {
        name: "bootstrap-token",
        description: "Generates bootstrap tokens used to join a node to a cluster",
        filling: Filling::Component("bootstrap-token"),
    },
    Slot {
        name: "kubelet-finalize",
        description: "Updates settings relevant to the kubelet after TLS bootstrap",
        filling: Filling::Unavailable {
            blocks_later_phases: true,
        },
    },
    Slot {
        name: "addon",
        description: "Install required addons for passing conformance tests",
        filling: Filling::Component("addon"),
    },
    Slot {
        name: "show-join-command",
        description: "Show the join command for control-plane and worker node",
        filling: Filling::Component("show-join-command"),
    },
];

/// The slot named `name`.
pub fn slot(name: &str) -> Option<&'static Slot> {
    INIT_PHASES.iter().find(|slot| slot.name == name)
}

/// A component and the grant it runs under.
pub struct GrantedComponent {
    pub name: String,
    pub wasm: Cow<'static, [u8]>,
    pub grant: Grant,
}

impl GrantedComponent {
    /// A stock component with its reviewed grant.
    pub fn stock(name: &str) -> Result<Self> {
        let wasm = stock::component(name).with_context(|| {
            format!("the stock component {name:?} is not built into this binary")
        })?;
        Ok(Self {
            name: name.to_string(),
            wasm: Cow::Borrowed(wasm),
            grant: stock::grant(name),
        })
    }
}

/// Where a run reads and writes, and how.
pub struct RunOptions {
    /// `--root`: every node path is taken under it.
    pub root: PathBuf,
    /// Where compiled components are cached.
    pub cache_dir: Option<PathBuf>,
    pub dry_run: bool,
    /// Where the journal of effects goes; `None`: `<root>/etc/kubernetes/tmp/kubeforge-journal.jsonl`.
    pub journal: Option<PathBuf>,
}

/// A prepared `init` run: the runtime, the shared host context and the configuration.
pub struct Runner {
    runtime: Runtime,
    host: Arc<HostContext>,
    config: EffectiveConfig,
    outputs: Vec<(String, String)>,
}

/// The logical fs roots for `config`, under `root`.
fn roots(config: &EffectiveConfig, host: &Path) -> Roots {
    let node = |path: &str| host.join(path.trim_start_matches('/'));
    let mut roots = Roots::default();
    roots.insert("pki", node(config.certificates_dir()));
    roots.insert("kubeconfig", node("/etc/kubernetes"));
    roots.insert("manifests", node("/etc/kubernetes/manifests"));
    roots.insert("kubelet", node("/var/lib/kubelet"));
    roots.insert("tmp", node("/etc/kubernetes/tmp"));
    if let Some(local) = &config.cluster.etcd.local {
        roots.insert(
            "etcd-data",
            node(local.data_dir.as_deref().unwrap_or("/var/lib/etcd")),
        );
    }
    roots
}

impl Runner {
    pub fn new(options: RunOptions, config: EffectiveConfig) -> Result<Self> {
        let runtime = Runtime::new(options.cache_dir)?;
        let host = Arc::new(HostContext {
            roots: roots(&config, &options.root),
            effects: if options.dry_run {
                Effects::plan()
            } else {
                let path = options.journal.unwrap_or_else(|| {
                    options
                        .root
                        .join("etc/kubernetes/tmp/kubeforge-journal.jsonl")
                });
                Effects::apply(Some(Journal::new(&path)))
            },
            node_root: options.root,
            started: SystemTime::now(),
            kube: match config
                .init
                .timeouts
                .as_ref()
                .and_then(|t| t.kubernetes_api_call)
                .and_then(|d| d.to_std())
            {
                Some(timeout) => KubeAccess::new(timeout),
                None => KubeAccess::default(),
            },
        });
        Ok(Self {
            runtime,
            host,
            config,
            outputs: Vec::new(),
        })
    }

    /// Load a component and refuse it if it asks for more than its grant; its `describe()` runs
    /// under the run's `limits`.
    async fn load(
        &self,
        slot_name: &str,
        component: &GrantedComponent,
        limits: Limits,
    ) -> Result<(LoadedPhase, Vec<String>)> {
        let loaded = self.runtime.load(&component.name, &component.wasm)?;
        let info = self
            .runtime
            .describe_within(&loaded, self.host.clone(), limits)
            .await?;
        let missing = component.grant.missing(&info.requests);
        if !missing.is_empty() {
            bail!(
                "refusing to run phase {slot_name}: component {} ({}) requests more than its grant:\n  {}",
                component.name,
                loaded.digest,
                missing.join("\n  ")
            );
        }
        let sub_phases = info.sub_phases.into_iter().map(|sub| sub.name).collect();
        Ok((loaded, sub_phases))
    }

    /// Run one slot, or one of its sub-phases.
    pub async fn run_phase(
        &mut self,
        slot: &Slot,
        sub_phase: Option<&str>,
        skip: &[String],
    ) -> Result<()> {
        let Filling::Component(name) = slot.filling else {
            bail!(
                "phase {:?} is not available in this kubeforge build yet; skip it with --skip-phases={}",
                slot.name,
                slot.name
            );
        };
        let component = GrantedComponent::stock(name)?;
        self.run_component(slot.name, &component, sub_phase, skip, Limits::default())
            .await
    }

    /// Run `component` in the slot `slot_name` under `limits`: the whole phase (`None` or
    /// `all`, minus the sub-phases `skip` names) or one sub-phase.
    pub async fn run_component(
        &mut self,
        slot_name: &str,
        component: &GrantedComponent,
        sub_phase: Option<&str>,
        skip: &[String],
        limits: Limits,
    ) -> Result<()> {
        let (loaded, sub_phases) = self.load(slot_name, component, limits).await?;
        let selected: Vec<Option<&str>> = match sub_phase {
            Some("all") | None => {
                let skipped: Vec<&str> = sub_phases
                    .iter()
                    .map(String::as_str)
                    .filter(|sub| skip.iter().any(|s| *s == format!("{slot_name}/{sub}")))
                    .collect();
                if skipped.is_empty() {
                    vec![None]
                } else {
                    sub_phases
                        .iter()
                        .map(String::as_str)
                        .filter(|sub| !skipped.contains(sub))
                        .map(Some)
                        .collect()
                }
            }
            Some(sub) if sub_phases.iter().any(|s| s == sub) => vec![Some(sub)],
            Some(sub) => bail!(
                "phase {slot_name:?} has no sub-phase {sub:?}; its sub-phases are: all, {}",
                sub_phases.join(", ")
            ),
        };
        let config = serde_json::to_string(&self.config)
            .context("encoding the configuration for the phase")?;
        for sub in selected {
            let context = PhaseContext {
                config: config.clone(),
                dry_run: self.host.effects.is_dry_run(),
                outputs: self.outputs.clone(),
            };
            let origin = Origin {
                phase: slot_name.to_string(),
                component: loaded.digest.clone(),
            };
            let state = PhaseState::new(
                origin,
                component.grant.clone(),
                self.host.clone(),
                limits.memory,
            );
            let outcome = self
                .runtime
                .run(&loaded, state, &context, sub, limits)
                .await;
            // What the phase wrote before it failed is kept, as kubeadm keeps it; a re-run
            // resumes from there.
            self.host
                .effects
                .commit()
                .with_context(|| format!("writing the files of phase {slot_name}"))?;
            let report = outcome.map_err(|e| phase_failure(slot_name, sub, e))?;
            self.outputs.extend(report.outputs);
        }
        Ok(())
    }

    /// Run the whole tree, skipping `skip` (`phase` or `phase/sub-phase`).
    pub async fn run_all(&mut self, skip: &[String]) -> Result<()> {
        for slot in INIT_PHASES {
            if skip.iter().any(|s| s == slot.name) {
                continue;
            }
            match slot.filling {
                Filling::Component(_) => self.run_phase(slot, None, skip).await?,
                Filling::Unavailable {
                    blocks_later_phases: false,
                } => {
                    eprintln!(
                        "[{}] not available in this kubeforge build yet; skipped",
                        slot.name
                    );
                }
                Filling::Unavailable {
                    blocks_later_phases: true,
                } => {
                    bail!(
                        "phase {:?} is not available in this kubeforge build yet, and the phases after it depend on it; \
                         the phases before it ran, the rest did not (skip them with --skip-phases={} to stop here without an error)",
                        slot.name,
                        INIT_PHASES
                            .iter()
                            .skip_while(|s| s.name != slot.name)
                            .map(|s| s.name)
                            .collect::<Vec<_>>()
                            .join(",")
                    );
                }
            }
        }
        Ok(())
    }

    /// The plan of a `--dry-run`.
    pub fn take_plan(&self) -> Option<Plan> {
        self.host.effects.take_plan()
    }
}

/// Check `--skip-phases` entries against the tree.
pub fn validate_skip_phases(skip: &[String]) -> Result<()> {
    for entry in skip {
        let phase = entry.split('/').next().unwrap_or_default();
        if slot(phase).is_none() {
            return Err(anyhow!(
                "--skip-phases: unknown phase {entry:?}; the phases are: {}",
                INIT_PHASES
                    .iter()
                    .map(|s| s.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

fn phase_failure(phase: &str, sub: Option<&str>, error: RunError) -> anyhow::Error {
    let name = match sub {
        Some(sub) => format!("{phase}/{sub}"),
        None => phase.to_string(),
    };
    match error {
        RunError::Phase(PhaseError::InvalidConfig(field)) => {
            anyhow!(
                "phase {name}: invalid configuration: {}: {}",
                field.field,
                field.reason
            )
        }
        RunError::Phase(PhaseError::Denied(denial)) => {
            anyhow!(
                "phase {name} was denied {} access: {}",
                denial.capability,
                denial.target
            )
        }
        RunError::Phase(PhaseError::Conflict(why)) => anyhow!("phase {name}: {why}"),
        RunError::Phase(PhaseError::Failed(why)) => anyhow!("phase {name} failed: {why}"),
        RunError::Aborted(e) => anyhow!("phase {name} was stopped: {e:#}"),
    }
}
