//! The runner of `init`: it fills each slot of the tree with its component, checks the
//! component against its grant (and the lockfile, if there is one) and runs it.

pub mod lock;
pub mod stock;
pub mod tree;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, anyhow, bail};

use crate::capabilities::kube::{self, KubeAccess};
use crate::capabilities::node::ServiceManager;
use crate::capabilities::pki::seal::CertificateKey;
use crate::capabilities::{Grant, HostContext, PhaseState, Roots};
use crate::config::profile::{GrantSpec, PhaseConfiguration};
use crate::effects::{Effects, Journal, Origin, Plan, Root};
use crate::runtime::bindings::{PhaseContext, PhaseError, PhaseInfo};
use crate::runtime::{Limits, LoadedPhase, RunError, Runtime};
use kubeforge_api::EffectiveConfig;
use kubeforge_api::release::Release;
use lock::{LockedComponent, Lockfile};
pub use tree::{Filling, Slot};

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

    /// What fills `slot`; none for an unavailable slot.
    pub fn for_slot(slot: &Slot) -> Result<Option<Self>> {
        Ok(match &slot.filling {
            Filling::Builtin(name) => Some(Self::stock(name)?),
            Filling::File {
                path,
                sha256,
                grant,
            } => Some(Self {
                name: path.file_name().map_or_else(
                    || path.display().to_string(),
                    |n| n.to_string_lossy().into(),
                ),
                wasm: Cow::Owned(tree::read_pinned(path, sha256)?),
                grant: grant.clone(),
            }),
            Filling::Unavailable => None,
        })
    }
}

/// The slots a run fills, and the lockfile that pins them, if any.
#[derive(Default)]
pub struct Profile {
    /// The tree; empty means kubeadm's with the stock components.
    pub slots: Vec<Slot>,
    pub lock: Option<(PathBuf, Lockfile)>,
}

impl Profile {
    /// The slots of the config file at `config` (its PhaseConfiguration laid over kubeadm's
    /// tree; `file:` paths taken from the file's directory) and the lockfile beside it, if
    /// there is one. No config file: kubeadm's tree, no lock.
    pub fn load(phases: Option<&PhaseConfiguration>, config: Option<&Path>) -> Result<Self> {
        let slots = tree::slots_for(phases, config.and_then(Path::parent))?;
        let lock = match config {
            Some(config) => {
                let path = lock::default_path(config);
                Lockfile::read(&path)?.map(|lock| (path, lock))
            }
            None => None,
        };
        Ok(Self { slots, lock })
    }
}

/// The output that carries the certificate key to the phases after upload-certs.
pub const CERTIFICATE_KEY_OUTPUT: &str = "certificate-key";
/// The output every phase starts with: the machine's hostname as kubeadm reads it (kubelet-start
/// passes `--hostname-override` only when the node name differs from it).
pub const HOSTNAME_OUTPUT: &str = "hostname";

/// The journal's name in the `tmp` root when `--journal` does not name one.
const JOURNAL_FILE: &str = "kubeforge-journal.jsonl";

/// The API server the run's API calls go to instead of admin.conf's: from v1.36 kubeadm's
/// `init` talks to this node's own API server, whatever controlPlaneEndpoint says (a load
/// balancer in front of the control planes may not route to it yet).
fn local_api_server(config: &EffectiveConfig) -> Option<String> {
    (Release::of_version(config.kubernetes_version()).minor >= 36)
        .then(|| kubeforge_api::net::local_api_endpoint_url(config))
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
    /// `--service-command`: how services are controlled; `None`: systemctl.
    pub service_command: Option<String>,
    /// `--upload-certs`: run the upload-certs phase (kubeadm skips it otherwise).
    pub upload_certs: bool,
    /// Print the certificate key once a phase has used it (`--skip-certificate-key-print` off).
    pub print_certificate_key: bool,
    pub profile: Profile,
}

/// A prepared `init` run: the runtime, the shared host context and the configuration.
pub struct Runner {
    runtime: Runtime,
    host: Arc<HostContext>,
    config: EffectiveConfig,
    outputs: Vec<(String, String)>,
    slots: Vec<Slot>,
    lock: Option<(PathBuf, Lockfile)>,
    upload_certs: bool,
    print_certificate_key: bool,
}

/// The logical fs roots for `config`, under `root`.
fn roots(config: &EffectiveConfig, host: &Path) -> Roots {
    let node = |path: &str| host.join(path.trim_start_matches('/'));
    let mut dirs = vec![
        ("pki", node(config.certificates_dir())),
        ("kubeconfig", node("/etc/kubernetes")),
        ("manifests", node("/etc/kubernetes/manifests")),
        ("kubelet", node("/var/lib/kubelet")),
        ("tmp", node("/etc/kubernetes/tmp")),
    ];
    if let Some(local) = &config.cluster.etcd.local {
        dirs.push((
            "etcd-data",
            node(local.data_dir.as_deref().unwrap_or("/var/lib/etcd")),
        ));
    }
    Roots::new(dirs)
}

impl Runner {
    pub fn new(options: RunOptions, config: EffectiveConfig) -> Result<Self> {
        let runtime = Runtime::new(options.cache_dir)?;
        let roots = roots(&config, &options.root);
        roots.open_existing()?;
        let effects = if options.dry_run {
            Effects::plan()
        } else {
            let journal = match options.journal {
                Some(path) => Root::containing(&path)?,
                None => roots
                    .get("tmp")
                    .expect("the tmp root is always there")
                    .join(JOURNAL_FILE),
            };
            Effects::apply(Some(Journal::new(journal)))
        };
        let host = Arc::new(HostContext {
            roots,
            effects,
            node_root: options.root,
            started: SystemTime::now(),
            kube: KubeAccess::new(
                config
                    .init
                    .timeouts
                    .as_ref()
                    .and_then(|t| t.kubernetes_api_call)
                    .and_then(|d| d.to_std())
                    .unwrap_or(kube::DEFAULT_API_CALL_TIMEOUT),
                local_api_server(&config),
            ),
            services: options
                .service_command
                .as_deref()
                .map(ServiceManager::new)
                .unwrap_or_default(),
            advertise_address: config.advertise_address().parse().ok(),
            certificate_key: CertificateKey::new(config.init.certificate_key.clone()),
        });
        let slots = if options.profile.slots.is_empty() {
            tree::stock_slots()
        } else {
            options.profile.slots
        };
        Ok(Self {
            runtime,
            host,
            config,
            outputs: crate::config::defaults::machine_hostname()
                .map(|hostname| (HOSTNAME_OUTPUT.to_string(), hostname))
                .into_iter()
                .collect(),
            slots,
            lock: options.profile.lock,
            upload_certs: options.upload_certs,
            print_certificate_key: options.print_certificate_key,
        })
    }

    /// The slots this run fills, in order.
    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    /// Load a component and refuse it if it asks for more than its grant; its `describe()` runs
    /// under the run's `limits`.
    async fn load(
        &self,
        slot_name: &str,
        component: &GrantedComponent,
        limits: Limits,
    ) -> Result<(LoadedPhase, PhaseInfo)> {
        let loaded = self.runtime.load(&component.name, &component.wasm)?;
        let ungranted = component.grant.ungranted_imports(&loaded.imports);
        if !ungranted.is_empty() {
            bail!(
                "refusing to run phase {slot_name}: component {} ({}) imports {}, which its grant gives nothing of; \
                 grant what it needs of them in the PhaseConfiguration entry of slot {slot_name}, or use a component that does not import them",
                component.name,
                loaded.digest,
                ungranted.join(", ")
            );
        }
        let info = self
            .runtime
            .describe_within(&loaded, self.host.clone(), limits)
            .await?;
        let missing = component.grant.missing(&info.requests);
        if !missing.is_empty() {
            let needed = GrantSpec::from(&component.grant.widened_to(&info.requests));
            bail!(
                "refusing to run phase {slot_name}: component {} ({}) requests more than its grant:\n  {}\n\
                 After reviewing the component, grant it in the PhaseConfiguration entry of slot {slot_name}:\n{}",
                component.name,
                loaded.digest,
                missing.join("\n  "),
                needed.to_profile_yaml(2)
            );
        }
        Ok((loaded, info))
    }

    /// The digest and grant of the component in `slot`, checked as a run would check it, for the
    /// lockfile. None for an unavailable slot.
    pub async fn lock_entry(&self, slot: &Slot) -> Result<Option<LockedComponent>> {
        let Some(component) = GrantedComponent::for_slot(slot)? else {
            return Ok(None);
        };
        let (loaded, _) = self.load(&slot.name, &component, Limits::default()).await?;
        Ok(Some(LockedComponent {
            slot: slot.name.clone(),
            component: slot.filling.source().unwrap_or_default(),
            digest: loaded.digest,
            grant: GrantSpec::from(&component.grant),
        }))
    }

    /// `init phase <phase> [<sub-phase>]`: one slot, a sub-phase of its component, or every
    /// slot of a group (`addon`).
    pub async fn run_phase(
        &mut self,
        phase: &str,
        sub_phase: Option<&str>,
        skip: &[String],
    ) -> Result<()> {
        let group: Vec<Slot> = self
            .slots
            .iter()
            .filter(|slot| slot.phase() == phase)
            .cloned()
            .collect();
        match (group.as_slice(), sub_phase) {
            ([], _) => bail!(
                "unknown phase {phase:?}; the phases are: {}",
                tree::top_level(&self.slots).join(", ")
            ),
            ([slot], _) if slot.member().is_none() => self.run_slot(slot, sub_phase, skip).await,
            (_, None | Some("all")) => {
                for slot in &group {
                    if !is_skipped(slot, skip) {
                        self.run_slot(slot, None, skip).await?;
                    }
                }
                Ok(())
            }
            (_, Some(member)) => {
                let Some(slot) = group.iter().find(|slot| slot.member() == Some(member)) else {
                    bail!(
                        "phase {phase:?} has no sub-phase {member:?}; its sub-phases are: all, {}",
                        group
                            .iter()
                            .filter_map(Slot::member)
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                };
                self.run_slot(slot, None, skip).await
            }
        }
    }

    /// Run the component in `slot` (all of it, or one sub-phase), unless the configuration or
    /// the flags say kubeadm would skip it.
    async fn run_slot(
        &mut self,
        slot: &Slot,
        sub_phase: Option<&str>,
        skip: &[String],
    ) -> Result<()> {
        if let Some(line) = self.skip_reason(slot) {
            println!("{line}");
            return Ok(());
        }
        let Some(component) = GrantedComponent::for_slot(slot)? else {
            eprintln!(
                "[{}] not available in this kubeforge build yet; skipped",
                slot.name
            );
            return Ok(());
        };
        let limits = self.limits_for(slot);
        self.run_component(&slot.name, &component, sub_phase, skip, limits)
            .await
    }

    /// Why kubeadm would not run `slot` with this configuration and these flags, as the line
    /// it prints.
    fn skip_reason(&self, slot: &Slot) -> Option<&'static str> {
        match slot.name.as_str() {
            "upload-certs" if !self.upload_certs => {
                Some("[upload-certs] Skipping phase. Please see --upload-certs")
            }
            // Whatever fills the DNS slot (CoreDNS, kube-dns) honours dns.disabled.
            "addon/coredns" if self.config.cluster.dns.disabled => {
                Some("[addons] Not installing the DNS addon: dns.disabled is set")
            }
            "addon/kube-proxy" if self.config.cluster.proxy.disabled => {
                Some("[addons] Not installing kube-proxy addon: proxy.disabled is set")
            }
            _ => None,
        }
    }

    /// The limits of a run of `slot`: the default, plus the configured health-check timeouts
    /// for the phase that waits for the control plane.
    fn limits_for(&self, slot: &Slot) -> Limits {
        let mut limits = Limits::default();
        if slot.name == "wait-control-plane" {
            let timeouts = self.config.init.timeouts.as_ref();
            for timeout in [
                timeouts.and_then(|t| t.kubelet_health_check),
                timeouts.and_then(|t| t.control_plane_component_health_check),
            ]
            .into_iter()
            .flatten()
            .filter_map(|d| d.to_std())
            {
                limits.deadline += timeout;
            }
        }
        limits
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
        let (loaded, info) = self.load(slot_name, component, limits).await?;
        if let Some((path, lock)) = &self.lock {
            lock.check(
                path,
                slot_name,
                &loaded.digest,
                &component.grant,
                &info.requests,
            )?;
        }
        let sub_phases: Vec<String> = info.sub_phases.into_iter().map(|sub| sub.name).collect();
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
        // The certificate key stays in the host: phases that seal files get ciphertext, and only
        // the phases after that get the key (as an output).
        let mut config = self.config.clone();
        config.init.certificate_key = None;
        let config =
            serde_json::to_string(&config).context("encoding the configuration for the phase")?;
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
            self.share_certificate_key(slot_name);
        }
        Ok(())
    }

    /// Once a phase has sealed files with the certificate key, print the key for the operator
    /// (as kubeadm does) and pass it to later phases for the control-plane join command (withheld
    /// there too when it is not printed).
    fn share_certificate_key(&mut self, slot_name: &str) {
        let Some(key) = self.host.certificate_key.hex() else {
            return;
        };
        if self
            .outputs
            .iter()
            .any(|(name, _)| name == CERTIFICATE_KEY_OUTPUT)
        {
            return;
        }
        // `--skip-certificate-key-print` hides it from the join command too, as kubeadm does.
        let shown = if self.print_certificate_key {
            println!("[{slot_name}] Using certificate key:\n{key}");
            key
        } else {
            "<value withheld>".to_string()
        };
        self.outputs.push((CERTIFICATE_KEY_OUTPUT.into(), shown));
    }

    /// Run the whole tree, skipping `skip` (`phase` or `phase/sub-phase`).
    pub async fn run_all(&mut self, skip: &[String]) -> Result<()> {
        for slot in self.slots.clone() {
            if !is_skipped(&slot, skip) {
                self.run_slot(&slot, None, skip).await?;
            }
        }
        Ok(())
    }

    /// The plan of a `--dry-run`.
    pub fn take_plan(&self) -> Option<Plan> {
        self.host.effects.take_plan()
    }
}

/// Whether `--skip-phases` names `slot` or its phase.
fn is_skipped(slot: &Slot, skip: &[String]) -> bool {
    skip.iter().any(|s| *s == slot.name || s == slot.phase())
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
