//! The wasmtime engine that runs phase components: one async engine per process, compiled
//! artifacts cached on disk, a fresh instance per phase run, and limits on every run.

pub mod bindings;
mod cache;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use sha2::{Digest, Sha256};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, Store, Trap};

use crate::capabilities::{Grant, HostContext, PhaseState};
use crate::effects::Origin;
use bindings::{PhaseComponentPre, PhaseContext, PhaseError, PhaseInfo, PhaseReport};
use cache::ArtifactCache;

/// How often the epoch advances; deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The bounds of one phase run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time for the whole run, host calls included.
    pub deadline: Duration,
    /// Bytes of linear memory the component may grow to.
    pub memory: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(120),
            memory: 256 << 20,
        }
    }
}

/// The engine, the linker with every host interface, and the artifact cache.
pub struct Runtime {
    engine: Engine,
    linker: Linker<PhaseState>,
    cache: ArtifactCache,
}

/// A compiled component, ready to instantiate.
#[derive(Clone)]
pub struct LoadedPhase {
    pub name: String,
    /// `sha256:<hex>` of the component's bytes.
    pub digest: String,
    /// The interfaces the component imports, e.g. `kubeforge:phase/kube@0.1.0`.
    pub imports: Vec<String>,
    pre: PhaseComponentPre<PhaseState>,
}

/// Why a phase run did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The phase returned an error.
    #[error("{0}")]
    Phase(PhaseError),
    /// The phase was stopped by a limit or trapped.
    #[error("{0:#}")]
    Aborted(anyhow::Error),
}

impl Runtime {
    /// A runtime whose compiled artifacts are cached in `cache_dir` (none: no disk cache).
    pub fn new(cache_dir: Option<PathBuf>) -> Result<Self> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine =
            Engine::new(&config).map_err(|e| anyhow!("creating the wasmtime engine: {e:#}"))?;
        let ticker = engine.weak();
        std::thread::spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(wasm_error)?;
        bindings::kubeforge::phase::types::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasm_error)?;
        bindings::kubeforge::phase::log::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasm_error)?;
        bindings::kubeforge::phase::fs::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasm_error)?;
        bindings::kubeforge::phase::pki::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasm_error)?;
        bindings::kubeforge::phase::node::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasm_error)?;
        bindings::kubeforge::phase::kube::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(wasm_error)?;
        let cache = ArtifactCache::new(cache_dir, &engine);
        Ok(Self {
            engine,
            linker,
            cache,
        })
    }

    /// Compile (or take from the cache) and link a component.
    pub fn load(&self, name: &str, wasm: &[u8]) -> Result<LoadedPhase> {
        let started = Instant::now();
        let digest = digest(wasm);
        let component = self
            .cache
            .load(&self.engine, &digest, wasm)
            .with_context(|| format!("loading the {name} phase component ({digest})"))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| anyhow!("the {name} phase component cannot be linked: {e:#}"))?;
        let pre = PhaseComponentPre::new(pre).map_err(|e| {
            anyhow!("the {name} component does not export kubeforge:phase/phase: {e:#}")
        })?;
        // benches/run.sh reads these timings (KUBEFORGE_LOG=kubeforge::runtime=debug).
        tracing::debug!(
            phase = name,
            elapsed_us = started.elapsed().as_micros() as u64,
            "component loaded"
        );
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        Ok(LoadedPhase {
            name: name.to_string(),
            digest,
            imports,
            pre,
        })
    }

    /// The phase's description of itself, under the default limits, with no grant.
    pub async fn describe(&self, phase: &LoadedPhase, host: Arc<HostContext>) -> Result<PhaseInfo> {
        self.describe_within(phase, host, Limits::default()).await
    }

    /// The phase's description of itself, under `limits` (those of the run it precedes), with
    /// no grant.
    pub async fn describe_within(
        &self,
        phase: &LoadedPhase,
        host: Arc<HostContext>,
        limits: Limits,
    ) -> Result<PhaseInfo> {
        let mut store = self.store(
            PhaseState::new(
                Origin {
                    phase: phase.name.clone(),
                    component: phase.digest.clone(),
                },
                Grant::default(),
                host,
                limits.memory,
            ),
            limits,
        );
        let started = Instant::now();
        let result = tokio::time::timeout(limits.deadline, async {
            let instance = phase.pre.instantiate_async(&mut store).await?;
            instance
                .kubeforge_phase_phase()
                .call_describe(&mut store)
                .await
        })
        .await;
        tracing::debug!(
            phase = phase.name,
            elapsed_us = started.elapsed().as_micros() as u64,
            "component instantiated and described"
        );
        match result {
            Ok(Ok(info)) => Ok(info),
            Ok(Err(e)) => Err(explain_trap(&phase.name, e, limits)),
            Err(_) => Err(anyhow!(
                "the {} phase did not describe itself within {:?}",
                phase.name,
                limits.deadline
            )),
        }
    }

    /// Run a phase (or one of its sub-phases) in a fresh instance.
    pub async fn run(
        &self,
        phase: &LoadedPhase,
        state: PhaseState,
        context: &PhaseContext,
        sub_phase: Option<&str>,
        limits: Limits,
    ) -> Result<PhaseReport, RunError> {
        let mut store = self.store(state, limits);
        let result = tokio::time::timeout(limits.deadline, async {
            let instance = phase.pre.instantiate_async(&mut store).await?;
            instance
                .kubeforge_phase_phase()
                .call_run(&mut store, context, sub_phase)
                .await
        })
        .await;
        match result {
            Ok(Ok(Ok(report))) => Ok(report),
            Ok(Ok(Err(error))) => Err(RunError::Phase(error)),
            Ok(Err(e)) => Err(RunError::Aborted(explain_trap(&phase.name, e, limits))),
            Err(_) => Err(RunError::Aborted(anyhow!(
                "the {} phase exceeded its deadline of {:?}",
                phase.name,
                limits.deadline
            ))),
        }
    }

    /// The names of a component's imports and exports (its WIT world), without linking it.
    pub fn world(&self, wasm: &[u8]) -> Result<(Vec<String>, Vec<String>)> {
        let digest = digest(wasm);
        let component = self.cache.load(&self.engine, &digest, wasm)?;
        let world = component.component_type();
        let imports = world
            .imports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let exports = world
            .exports(&self.engine)
            .map(|(name, _)| name.to_string())
            .collect();
        Ok((imports, exports))
    }

    fn store(&self, state: PhaseState, limits: Limits) -> Store<PhaseState> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let ticks = (limits.deadline.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        store
    }
}

/// `sha256:<hex>` of a component's bytes: its identity in grants, lockfiles and the journal.
pub fn digest(wasm: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(wasm)))
}

/// A trap as the operator should read it: which limit, or what the guest did.
fn explain_trap(phase: &str, error: wasmtime::Error, limits: Limits) -> anyhow::Error {
    // The store's limiter refuses a memory grow with a plain error, not a `Trap`.
    if format!("{error:?}").contains("forcing trap when growing memory") {
        return anyhow!(
            "the {phase} phase exceeded its memory limit of {} MiB",
            limits.memory >> 20
        );
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => anyhow!(
            "the {phase} phase exceeded its deadline of {:?}",
            limits.deadline
        ),
        Some(Trap::UnreachableCodeReached) | Some(Trap::StackOverflow) | Some(_) => {
            let text = format!("{error:?}");
            if text.contains("memory") && text.contains("limit")
                || text.contains("forcing trap when growing memory")
            {
                anyhow!(
                    "the {phase} phase exceeded its memory limit of {} MiB",
                    limits.memory >> 20
                )
            } else {
                anyhow!("the {phase} phase crashed: {error:#}")
            }
        }
        None => anyhow!("the {phase} phase failed: {error:#}"),
    }
}

/// wasmtime's error as anyhow's.
pub fn wasm_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow!("{error:#}")
}
