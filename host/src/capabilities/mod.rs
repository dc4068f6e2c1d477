//! The host side of every interface a phase imports, one module per interface, and the grants
//! that bound them. Every call is checked against the calling phase's [`Grant`]; a call outside
//! it is denied with an error that names the phase and what it tried.

pub mod fs;
pub mod kube;
pub mod log;
pub mod node;
pub mod pki;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::effects::rooted::within_root;
use crate::effects::{Effects, LinkRefused, Origin, Root, RootedPath};
use crate::runtime::bindings::{CapabilityRequest, Denial, PhaseError};

/// What one phase may touch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Logical fs roots and whether they are writable.
    pub fs: BTreeMap<String, Access>,
    /// CAs the phase may sign with.
    pub pki_sign: Vec<String>,
    /// CAs the phase may create.
    pub pki_create: Vec<String>,
    /// Whether the phase may encrypt files for kubeadm's `kubeadm-certs` Secret.
    pub pki_seal: bool,
    /// Node paths the phase may ask about.
    pub node_paths: Vec<String>,
    /// Services of the node the phase may stop, start or restart.
    pub node_services: Vec<String>,
    /// URL patterns the phase may probe (`*` matches any run of characters).
    pub node_probes: Vec<String>,
    /// What the phase may do through the Kubernetes API.
    pub kube: Vec<kube::KubeRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Read,
    ReadWrite,
}

impl Grant {
    /// What of `request` this grant does not cover, one line per missing grant.
    pub fn missing(&self, request: &CapabilityRequest) -> Vec<String> {
        let mut missing = Vec::new();
        for fs in &request.fs {
            let wanted = if fs.writable {
                Access::ReadWrite
            } else {
                Access::Read
            };
            if self
                .fs
                .get(&fs.root)
                .is_none_or(|granted| *granted < wanted)
            {
                missing.push(format!(
                    "fs: {} {}",
                    fs.root,
                    if fs.writable { "read-write" } else { "read" }
                ));
            }
        }
        for ca in request
            .pki_sign
            .iter()
            .filter(|ca| !self.pki_sign.contains(ca))
        {
            missing.push(format!("pki: sign with {ca}"));
        }
        for ca in request
            .pki_create
            .iter()
            .filter(|ca| !self.pki_create.contains(ca))
        {
            missing.push(format!("pki: create {ca}"));
        }
        if request.pki_seal && !self.pki_seal {
            missing.push("pki: seal files for upload".into());
        }
        for path in request
            .node_paths
            .iter()
            .filter(|p| !self.node_paths.contains(p))
        {
            missing.push(format!("node: path-exists {path}"));
        }
        for service in request
            .node_services
            .iter()
            .filter(|s| !self.node_services.contains(s))
        {
            missing.push(format!("node: service {service}"));
        }
        for url in request
            .node_probes
            .iter()
            .filter(|u| !self.node_probes.contains(u))
        {
            missing.push(format!("node: probe {url}"));
        }
        missing.extend(self.missing_kube(&request.kube));
        missing
    }
}

impl Grant {
    /// The imported interfaces that reach outside the sandbox and that this grant gives nothing
    /// of: a component importing them is refused before it runs.
    pub fn ungranted_imports<'a>(&self, imports: &'a [String]) -> Vec<&'a str> {
        imports
            .iter()
            .map(String::as_str)
            .filter(
                |import| match import.split('@').next().unwrap_or_default() {
                    "kubeforge:phase/fs" => self.fs.is_empty(),
                    "kubeforge:phase/kube" => self.kube.is_empty(),
                    "kubeforge:phase/node" => {
                        self.node_paths.is_empty()
                            && self.node_services.is_empty()
                            && self.node_probes.is_empty()
                    }
                    _ => false,
                },
            )
            .collect()
    }

    /// This grant widened to cover `request`: what the operator would grant to run it.
    pub fn widened_to(&self, request: &CapabilityRequest) -> Grant {
        let mut grant = self.clone();
        for fs in &request.fs {
            let wanted = if fs.writable {
                Access::ReadWrite
            } else {
                Access::Read
            };
            let granted = grant.fs.entry(fs.root.clone()).or_insert(wanted);
            *granted = (*granted).max(wanted);
        }
        let add = |list: &mut Vec<String>, wanted: &[String]| {
            for item in wanted {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        };
        add(&mut grant.pki_sign, &request.pki_sign);
        add(&mut grant.pki_create, &request.pki_create);
        grant.pki_seal |= request.pki_seal;
        add(&mut grant.node_paths, &request.node_paths);
        add(&mut grant.node_services, &request.node_services);
        add(&mut grant.node_probes, &request.node_probes);
        if !self.missing_kube(&request.kube).is_empty() {
            grant
                .kube
                .extend(request.kube.iter().map(|rule| kube::KubeRule {
                    verbs: rule.verbs.clone(),
                    resources: rule.resources.clone(),
                    namespaces: rule.namespaces.clone(),
                }));
        }
        grant
    }
}

/// The logical roots of a run: where each lives on this machine, as a directory handle.
#[derive(Debug, Clone, Default)]
pub struct Roots {
    dirs: BTreeMap<String, Arc<Root>>,
}

impl Roots {
    /// The roots `dirs` names. Roots nest (`manifests`, `pki` and `tmp` lie in `kubeconfig`'s
    /// /etc/kubernetes): a nested root is opened through the handle of the root around it, and
    /// a path under the outer root never reaches into it.
    pub fn new<'a>(dirs: impl IntoIterator<Item = (&'a str, PathBuf)>) -> Self {
        let mut dirs: Vec<(&str, PathBuf)> = dirs.into_iter().collect();
        // Outer roots first, so each nested root finds its outer one built.
        dirs.sort_by_key(|(_, path)| path.components().count());
        let mut built: Vec<Arc<Root>> = Vec::with_capacity(dirs.len());
        for (index, (name, path)) in dirs.iter().enumerate() {
            let nested = dirs
                .iter()
                .skip(index + 1)
                .filter(|(_, inner)| inner != path)
                .filter_map(|(other, inner)| {
                    let relative = inner.strip_prefix(path).ok()?;
                    Some((other.to_string(), relative.to_path_buf()))
                })
                .collect();
            let outer = built
                .iter()
                .filter(|outer| path.starts_with(outer.path()) && path != outer.path())
                .max_by_key(|outer| outer.path().components().count());
            let mut root = match outer {
                Some(outer) => {
                    let relative = path.strip_prefix(outer.path()).unwrap_or(path);
                    Root::nested_in(name, outer, relative.to_path_buf())
                }
                None => Root::new(name, path.clone()),
            };
            root.set_nested(nested);
            built.push(Arc::new(root));
        }
        Self {
            dirs: built
                .into_iter()
                .map(|root| (root.name().to_string(), root))
                .collect(),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Root>> {
        self.dirs.get(name)
    }

    /// Open every root that exists now, so what later happens to the paths above them does not
    /// move them; a root made during the run is opened when it is made.
    pub fn open_existing(&self) -> anyhow::Result<()> {
        self.dirs.values().try_for_each(|root| root.open_existing())
    }
}

/// What every phase run shares: the roots, the effects layer and the run's start time.
pub struct HostContext {
    pub roots: Roots,
    pub effects: Effects,
    /// `--root`: node paths are taken under it.
    pub node_root: PathBuf,
    /// The start of this kubeforge run; certificates are backdated from it.
    pub started: SystemTime,
    /// The run's Kubernetes API client, made on first use.
    pub kube: kube::KubeAccess,
    /// How services of the node are stopped and started.
    pub services: node::ServiceManager,
    /// The node's advertise address: besides loopback, the only address a probe may reach.
    pub advertise_address: Option<std::net::IpAddr>,
    /// The key that encrypts the `kubeadm-certs` Secret.
    pub certificate_key: pki::seal::CertificateKey,
}

impl HostContext {
    /// A node path (absolute, as in manifests) as a path on this machine.
    pub fn node_path(&self, path: &str) -> PathBuf {
        self.node_root.join(path.trim_start_matches('/'))
    }
}

/// The store data of one phase run.
pub struct PhaseState {
    pub origin: Origin,
    pub grant: Grant,
    pub host: Arc<HostContext>,
    pub table: ResourceTable,
    pub limits: StoreLimits,
    pub log: log::LogBudget,
    wasi: WasiCtx,
}

impl PhaseState {
    pub fn new(origin: Origin, grant: Grant, host: Arc<HostContext>, memory_limit: usize) -> Self {
        Self {
            origin,
            grant,
            host,
            table: ResourceTable::new(),
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .trap_on_grow_failure(true)
                .build(),
            log: log::LogBudget::default(),
            // No preopens, no network, and of the environment only the proxy settings, which
            // kubeadm passes on to the control-plane containers: a phase reaches the world only
            // through the kubeforge interfaces.
            wasi: WasiCtx::builder().envs(&proxy_environment()).build(),
        }
    }

    /// Deny a call: the operator sees a line, the phase gets an error it can report.
    pub fn deny(&self, capability: &str, target: impl Into<String>) -> PhaseError {
        let target = target.into();
        tracing::warn!(phase = %self.origin.phase, capability, target = %target, "denied");
        self.host
            .effects
            .record_denial(&self.origin, capability, &target);
        eprintln!(
            "[{}] denied: {capability} {target} is outside the phase's grant",
            self.origin.phase
        );
        PhaseError::Denied(Denial {
            capability: capability.to_string(),
            target,
        })
    }

    /// `path` under the logical root `root`, if the grant allows `access`.
    pub fn resolve(
        &self,
        root: &str,
        path: &str,
        access: Access,
    ) -> Result<RootedPath, PhaseError> {
        if self
            .grant
            .fs
            .get(root)
            .is_none_or(|granted| *granted < access)
        {
            let verb = if access == Access::ReadWrite {
                "write"
            } else {
                "read"
            };
            return Err(self.deny("fs", format!("{verb} {root}:{path}")));
        }
        self.locate(root, path)
    }

    /// `path` under `root`, refusing paths that could leave it. Capabilities call this directly
    /// for the files they own (the pki capability for CA files). What keeps an effect inside the
    /// root is the root's handle ([`Root`]); the checks here give the phase its denial at once.
    pub fn locate(&self, root: &str, path: &str) -> Result<RootedPath, PhaseError> {
        let Some(dir) = self.host.roots.get(root) else {
            return Err(PhaseError::Failed(format!(
                "there is no fs root named {root:?}"
            )));
        };
        let Some(relative) = within_root(Path::new(path)) else {
            return Err(self.deny(
                "fs",
                format!("{root}:{path} (paths must stay inside their root)"),
            ));
        };
        if let Some(nested) = dir.nested_root_of(&relative) {
            return Err(self.deny("fs", format!("{root}:{path} (inside the {nested} root)")));
        }
        let located = dir.join(relative);
        match located.check_links() {
            Ok(()) => Ok(located),
            Err(e) if e.downcast_ref::<LinkRefused>().is_some() => {
                Err(self.deny("fs", format!("{root}:{path} (crosses a symbolic link)")))
            }
            Err(e) => Err(failed(e)),
        }
    }
}

impl crate::runtime::bindings::kubeforge::phase::types::Host for PhaseState {}

impl WasiView for PhaseState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The `*_proxy` variables (any case) of kubeforge's environment.
fn proxy_environment() -> Vec<(String, String)> {
    std::env::vars()
        .filter(|(name, _)| name.to_lowercase().ends_with("_proxy"))
        .collect()
}

/// A host failure as the phase sees it.
pub fn failed(error: anyhow::Error) -> PhaseError {
    PhaseError::Failed(format!("{error:#}"))
}
