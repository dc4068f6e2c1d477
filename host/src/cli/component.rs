//! `kubeforge component`: what fills each slot, and what a component is and asks for.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;

use crate::capabilities::{Grant, HostContext, Roots};
use crate::config::InitFlags;
use crate::effects::Effects;
use crate::runtime::bindings::CapabilityRequest;
use crate::runtime::{Runtime, digest};
use crate::workflow::lock::{self as lockfile, Lockfile};
use crate::workflow::{Filling, Profile, RunOptions, Runner, stock};

#[derive(Args)]
pub struct ComponentCommand {
    #[command(subcommand)]
    command: ComponentSubcommand,
}

#[derive(Subcommand)]
enum ComponentSubcommand {
    /// Show every init slot and the component that fills it, with its digest.
    List {
        /// A config file whose PhaseConfiguration refills or adds slots.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Format,
    },
    /// Record each slot's component digest and grant in the lockfile beside the config file
    /// (kubeforge.lock.yaml); later runs refuse components that differ from it.
    Lock {
        /// The config file (with its PhaseConfiguration, if any) to lock.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Show a component's digest, size, WIT imports and exports, and the capabilities it requests.
    Inspect {
        /// A component file (`.wasm`), or `builtin:<name>` for a stock component.
        component: String,
        #[arg(short, long, value_enum, default_value = "text")]
        output: Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Yaml,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SlotEntry {
    slot: String,
    component: Option<String>,
    digest: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection {
    component: String,
    digest: String,
    size: usize,
    imports: Vec<String>,
    exports: Vec<String>,
    phase: Option<String>,
    sub_phases: Vec<String>,
    requests: Vec<String>,
    /// Why the component could not describe itself, if it could not.
    describe_error: Option<String>,
}

pub fn run(command: ComponentCommand, cache_dir: Option<PathBuf>) -> Result<()> {
    match command.command {
        ComponentSubcommand::List { config, output } => list(config.as_deref(), output),
        ComponentSubcommand::Lock { config } => lock(&config, cache_dir),
        ComponentSubcommand::Inspect { component, output } => {
            inspect(&component, output, cache_dir)
        }
    }
}

fn list(config: Option<&Path>, output: Format) -> Result<()> {
    let loaded = config
        .map(|path| crate::config::load_init(Some(path), &InitFlags::default()))
        .transpose()?;
    let phases = loaded.as_ref().and_then(|l| l.phase_configuration.as_ref());
    let slots = Profile::load(phases, config)?.slots;
    let entries: Vec<SlotEntry> = slots
        .iter()
        .map(|slot| SlotEntry {
            slot: slot.name.clone(),
            component: slot.filling.source(),
            digest: match &slot.filling {
                Filling::Builtin(name) => stock::component(name).map(digest),
                Filling::File { sha256, .. } => Some(format!("sha256:{sha256}")),
                Filling::Unavailable => None,
            },
        })
        .collect();
    match output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
        Format::Yaml => print!(
            "{}",
            kubeforge_api::yaml::to_string(&serde_json::to_value(&entries)?)
        ),
        Format::Text => {
            println!("{:<22} {:<28} DIGEST", "SLOT", "COMPONENT");
            for entry in &entries {
                println!(
                    "{:<22} {:<28} {}",
                    entry.slot,
                    entry.component.as_deref().unwrap_or("(not in this build)"),
                    entry.digest.as_deref().unwrap_or("-"),
                );
            }
            let spare: Vec<&str> = stock::names()
                .into_iter()
                .filter(|name| {
                    !slots
                        .iter()
                        .any(|slot| slot.filling == Filling::Builtin(name.to_string()))
                })
                .collect();
            if !spare.is_empty() {
                println!(
                    "\nBuilt in, in no slot (a PhaseConfiguration can put them in one): {}",
                    spare.join(", ")
                );
            }
            println!(
                "\n`kubeforge component inspect builtin:<name>` shows what a component requests."
            );
        }
    }
    Ok(())
}

fn lock(config: &Path, cache_dir: Option<PathBuf>) -> Result<()> {
    let loaded = crate::config::load_init(Some(config), &InitFlags::default())?;
    let mut profile = Profile::load(loaded.phase_configuration.as_ref(), Some(config))?;
    let slots = profile.slots.clone();
    profile.lock = None;
    let runner = Runner::new(
        RunOptions {
            root: PathBuf::from("/"),
            cache_dir,
            dry_run: true,
            journal: None,
            service_command: None,
            upload_certs: false,
            print_certificate_key: false,
            profile,
        },
        loaded.effective,
    )?;
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut components = Vec::new();
    for slot in &slots {
        if let Some(entry) = tokio.block_on(runner.lock_entry(slot))? {
            components.push(entry);
        }
    }
    let path = lockfile::default_path(config);
    Lockfile::new(components).write(&path)?;
    println!(
        "Locked {} components in {}",
        slots
            .iter()
            .filter(|s| s.filling != Filling::Unavailable)
            .count(),
        path.display()
    );
    Ok(())
}

fn inspect(component: &str, output: Format, cache_dir: Option<PathBuf>) -> Result<()> {
    let wasm = match component.strip_prefix("builtin:") {
        Some(name) => stock::component(name)
            .with_context(|| {
                format!("there is no stock component {name:?}; see `kubeforge component list`")
            })?
            .to_vec(),
        None => {
            std::fs::read(Path::new(component)).with_context(|| format!("reading {component}"))?
        }
    };
    let runtime = Runtime::new(cache_dir)?;
    let (imports, exports) = runtime.world(&wasm).with_context(|| {
        format!("{component} is not a WebAssembly component this host can load")
    })?;
    let mut inspection = Inspection {
        component: component.to_string(),
        digest: digest(&wasm),
        size: wasm.len(),
        imports,
        exports,
        phase: None,
        sub_phases: Vec::new(),
        requests: Vec::new(),
        describe_error: None,
    };
    let host = Arc::new(HostContext {
        roots: Roots::default(),
        effects: Effects::plan(),
        node_root: PathBuf::from("/"),
        started: SystemTime::now(),
        kube: Default::default(),
        services: Default::default(),
        advertise_address: None,
        certificate_key: Default::default(),
    });
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let described = runtime
        .load(component, &wasm)
        .and_then(|loaded| tokio.block_on(runtime.describe(&loaded, host)));
    match described {
        Ok(info) => {
            inspection.phase = Some(info.name);
            inspection.sub_phases = info.sub_phases.into_iter().map(|s| s.name).collect();
            inspection.requests = describe_requests(&info.requests);
        }
        Err(e) => inspection.describe_error = Some(format!("{e:#}")),
    }
    match output {
        Format::Json => println!("{}", serde_json::to_string_pretty(&inspection)?),
        Format::Yaml => print!(
            "{}",
            kubeforge_api::yaml::to_string(&serde_json::to_value(&inspection)?)
        ),
        Format::Text => {
            println!("component: {}", inspection.component);
            println!("digest:    {}", inspection.digest);
            println!("size:      {} bytes", inspection.size);
            if let Some(phase) = &inspection.phase {
                println!(
                    "phase:     {phase} (sub-phases: {})",
                    inspection.sub_phases.join(", ")
                );
            }
            println!("imports:");
            inspection.imports.iter().for_each(|i| println!("  {i}"));
            println!("exports:");
            inspection.exports.iter().for_each(|e| println!("  {e}"));
            println!("requests:");
            inspection.requests.iter().for_each(|r| println!("  {r}"));
            if let Some(error) = &inspection.describe_error {
                println!("describe() failed: {error}");
            }
        }
    }
    Ok(())
}

/// One line per requested capability, in the grant's own words: everything a request asks
/// is missing from an empty grant.
fn describe_requests(request: &CapabilityRequest) -> Vec<String> {
    Grant::default().missing(request)
}
