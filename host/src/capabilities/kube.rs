//! `kubeforge:phase/kube`: the Kubernetes API, as the phase's grant allows.
//!
//! One client per run, made on the first call from admin.conf under the `kubeconfig` root and
//! shared by every phase (kubeadm's behaviour, including the `kubeadm:cluster-admins` binding it
//! creates with super-admin.conf when admin.conf is not yet authorised); its one connection is
//! kept for the whole run (a `wait` that has to watch does so on a client of its own, and
//! discovery asks once per group-version). Every call is checked against the grant's rules
//! (verbs × `group/resource` × namespaces), retried with back-off on transient errors and
//! conflicts, and bounded by `timeouts.kubernetesAPICall`. In a dry run mutations are recorded in
//! the plan as YAML and never sent; reads see the planned objects first, then the cluster if it
//! answers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleRef, Subject};
use kube::api::{
    Api, DeleteParams, DynamicObject, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::{ApiResource, GroupVersion, GroupVersionKind, TypeMeta};
use kube::discovery::{Scope, pinned_group};
use kube::{Client, Config};
use tokio::sync::OnceCell;

use crate::capabilities::{Grant, HostContext, PhaseState};
use crate::effects::{Entry, Outcome};
use crate::runtime::bindings::PhaseError;
use crate::runtime::bindings::kubeforge::phase::kube::{Host, ObjectRef};

/// The field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "kubeforge";

/// The largest manifest a phase may hand to `apply` (a ConfigMap holds at most 1 MiB).
const MAX_MANIFEST: usize = 3 << 20;

/// How long a dry run waits for the cluster before it plans without it.
const DRY_RUN_PROBE: Duration = Duration::from_secs(3);

/// kubeadm's ClusterRoleBinding that makes admin.conf's group a cluster admin.
const CLUSTER_ADMINS: &str = "kubeadm:cluster-admins";

/// The verbs a kube rule names, one per call of the interface (`wait` is a `get`).
pub const VERBS: [&str; 4] = ["get", "apply", "patch", "delete"];

/// What a grant allows of the API, like an RBAC rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRule {
    /// `get`, `apply`, `delete` or `*`.
    pub verbs: Vec<String>,
    /// `group/resource`, `resource` for the core group, or `*`.
    pub resources: Vec<String>,
    /// Namespaces, `*` for every namespace; empty for cluster-scoped resources.
    pub namespaces: Vec<String>,
}

impl KubeRule {
    pub fn new(verbs: &[&str], resources: &[&str], namespaces: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        Self {
            verbs: owned(verbs),
            resources: owned(resources),
            namespaces: owned(namespaces),
        }
    }

    /// Whether the rule allows `verb` on `resource` in `namespace` (none: cluster-scoped).
    pub fn allows(&self, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
        let any = |items: &[String], wanted: &str| items.iter().any(|i| i == "*" || i == wanted);
        any(&self.verbs, verb)
            && any(&self.resources, resource)
            && match namespace {
                None => self.namespaces.is_empty(),
                Some(ns) => any(&self.namespaces, ns),
            }
    }
}

impl Grant {
    /// Whether any kube rule of the grant allows `verb` on `resource` in `namespace`.
    pub fn allows_kube(&self, verb: &str, resource: &str, namespace: Option<&str>) -> bool {
        self.kube
            .iter()
            .any(|r| r.allows(verb, resource, namespace))
    }

    /// The requested kube access this grant does not cover, one line each.
    pub fn missing_kube(&self, requested: &[crate::runtime::bindings::KubeRule]) -> Vec<String> {
        let mut missing = Vec::new();
        for rule in requested {
            let namespaces: Vec<Option<&str>> = if rule.namespaces.is_empty() {
                vec![None]
            } else {
                rule.namespaces.iter().map(|ns| Some(ns.as_str())).collect()
            };
            for verb in &rule.verbs {
                if verb != "*" && !VERBS.contains(&verb.as_str()) {
                    missing.push(format!(
                        "kube: unknown verb {verb:?} (the verbs are {})",
                        VERBS.join(", ")
                    ));
                    continue;
                }
                for resource in &rule.resources {
                    for namespace in &namespaces {
                        if !self.allows_kube(verb, resource, *namespace) {
                            missing.push(format!(
                                "kube: {verb} {resource} {}",
                                namespace.map_or("(cluster-scoped)".into(), |ns| format!(
                                    "in namespace {ns}"
                                ))
                            ));
                        }
                    }
                }
            }
        }
        missing
    }
}

/// The run's connection to the API server, made on first use.
pub struct KubeAccess {
    api_call_timeout: Duration,
    /// The API server every call goes to instead of the one the kubeconfig names: kubeadm from
    /// v1.36 points admin.conf and super-admin.conf at this node's own API server during
    /// `init` (`PointKubeConfigToLocalAPIEndpoint`), whatever controlPlaneEndpoint says.
    server: Option<String>,
    connection: OnceCell<Connection>,
    /// The live connection's settings, for the client a `wait` watches with (not a dry run).
    watch_config: std::sync::OnceLock<Config>,
    /// Kinds resolved by discovery: every kind of a group-version discovered so far.
    kinds: Mutex<HashMap<GroupVersionKind, Kind>>,
    /// Dry run: the objects the plan has applied (`Some`) or deleted (`None`), by target.
    planned: Mutex<HashMap<String, Option<serde_json::Value>>>,
}

enum Connection {
    Live(Client),
    /// Dry run only: no cluster answered, so reads find nothing.
    Unreachable,
}

#[derive(Clone)]
struct Kind {
    resource: ApiResource,
    namespaced: bool,
}

impl Kind {
    /// `group/resource`, or `resource` for the core group, as grants name it.
    fn grant_name(&self) -> String {
        if self.resource.group.is_empty() {
            self.resource.plural.clone()
        } else {
            format!("{}/{}", self.resource.group, self.resource.plural)
        }
    }
}

/// kubeadm's default `timeouts.kubernetesAPICall`.
pub const DEFAULT_API_CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for KubeAccess {
    /// kubeadm's default `timeouts.kubernetesAPICall`, the kubeconfig's own server.
    fn default() -> Self {
        Self::new(DEFAULT_API_CALL_TIMEOUT, None)
    }
}

impl KubeAccess {
    /// Every call (retries included) is bounded by `api_call_timeout`; `server` replaces the
    /// kubeconfig's server when set.
    pub fn new(api_call_timeout: Duration, server: Option<String>) -> Self {
        Self {
            api_call_timeout,
            server,
            connection: OnceCell::new(),
            watch_config: std::sync::OnceLock::new(),
            kinds: Mutex::new(HashMap::new()),
            planned: Mutex::new(HashMap::new()),
        }
    }

    async fn connection(&self, host: &HostContext, phase: &str) -> Result<&Connection, String> {
        self.connection
            .get_or_try_init(|| async {
                let config = config_from(host, "admin.conf").await?;
                let client = client_for(&config, "admin.conf")?;
                if host.effects.is_dry_run() {
                    return Ok(self.dry_run_connection(host, phase, client).await);
                }
                // When admin.conf itself was allowed to create (or found) the binding, RBAC
                // already authorises it; only after super-admin.conf had to create it is there
                // something to wait for (kubeadm's EnsureAdminClusterRoleBinding does the same).
                if !self.ensure_cluster_admins(host, &client).await? {
                    self.wait_authorized(&client).await?;
                }
                let _ = self.watch_config.set(config);
                Ok(Connection::Live(client))
            })
            .await
    }

    /// A dry run reads the cluster if it answers. Before the `kubeadm:cluster-admins` binding
    /// exists admin.conf may read nothing, so the dry run plans the binding and reads with
    /// super-admin.conf, as the real run will after creating it.
    async fn dry_run_connection(
        &self,
        host: &HostContext,
        phase: &str,
        admin: Client,
    ) -> Connection {
        let probe = |client: Client| async move {
            let bindings = Api::<ClusterRoleBinding>::all(client);
            match tokio::time::timeout(DRY_RUN_PROBE, bindings.get_opt(CLUSTER_ADMINS)).await {
                Ok(Ok(_)) => Some(true),
                Ok(Err(e)) if status(&e) == Some(403) => Some(false),
                _ => None,
            }
        };
        match probe(admin.clone()).await {
            Some(true) => Connection::Live(admin),
            Some(false) => match client_from(host, "super-admin.conf").await {
                Ok(super_admin) if probe(super_admin.clone()).await == Some(true) => {
                    host.effects.plan_api_object(
                        phase,
                        "apply",
                        &target("ClusterRoleBinding", None, CLUSTER_ADMINS),
                        None,
                    );
                    Connection::Live(super_admin)
                }
                _ => Connection::Unreachable,
            },
            None => Connection::Unreachable,
        }
    }

    /// Wait until admin.conf's identity may act as a cluster admin: right after the API server
    /// starts, its RBAC bootstrap (the `cluster-admin` ClusterRole) may still be missing, and
    /// every call would be forbidden.
    async fn wait_authorized(&self, admin: &Client) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.api_call_timeout;
        let bindings = Api::<ClusterRoleBinding>::all(admin.clone());
        let mut backoff = Duration::from_millis(100);
        loop {
            let last =
                match tokio::time::timeout_at(deadline, bindings.get_opt(CLUSTER_ADMINS)).await {
                    Ok(Ok(_)) => return Ok(()),
                    Ok(Err(e)) if status(&e) == Some(403) || transient(&e) => describe(&e),
                    Ok(Err(e)) => return Err(format!("admin.conf: {}", describe(&e))),
                    Err(_) => "no answer".into(),
                };
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(format!(
                    "admin.conf's identity was not authorized as a cluster admin within timeouts.kubernetesAPICall ({:?}); last error: {last}",
                    self.api_call_timeout
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// kubeadm's EnsureAdminClusterRoleBinding: admin.conf's group `kubeadm:cluster-admins` is
    /// bound to `cluster-admin`; if admin.conf may not create that binding yet, super-admin.conf
    /// (group `system:masters`) creates it. True when admin.conf's own request was authorised
    /// (created, or found it existing), so admin.conf needs no wait for RBAC.
    async fn ensure_cluster_admins(
        &self,
        host: &HostContext,
        admin: &Client,
    ) -> Result<bool, String> {
        let binding = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some(CLUSTER_ADMINS.into()),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: "cluster-admin".into(),
            },
            subjects: Some(vec![Subject {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "Group".into(),
                name: CLUSTER_ADMINS.into(),
                namespace: None,
            }]),
        };
        let what = format!("creating ClusterRoleBinding {CLUSTER_ADMINS}");
        let create = |client: Client| {
            let binding = binding.clone();
            let what = what.clone();
            async move {
                let api = Api::<ClusterRoleBinding>::all(client);
                let params = PostParams::default();
                match self.retry(|| api.create(&params, &binding)).await {
                    Ok(_) => Ok(true),
                    Err(CallError::Api(e)) if status(&e) == Some(409) => Ok(true),
                    Err(CallError::Api(e)) if status(&e) == Some(403) => Ok(false),
                    Err(e) => Err(e.explain(&what, self.api_call_timeout)),
                }
            }
        };
        if create(admin.clone()).await? {
            return Ok(true);
        }
        let super_admin = client_from(host, "super-admin.conf").await?;
        if create(super_admin).await? {
            Ok(false)
        } else {
            Err(format!(
                "{what}: forbidden with both admin.conf and super-admin.conf"
            ))
        }
    }

    /// The resource and scope of `gvk`, by discovery, or guessed when a dry run has no cluster.
    /// One discovery request per group-version: it caches every kind the group-version serves,
    /// so the next kind of that group-version (Role after ConfigMap's `v1`… RoleBinding after
    /// Role) costs no round trip. A kind not in the cache asks again (a CRD may have appeared).
    async fn kind(
        &self,
        connection: &Connection,
        gvk: &GroupVersionKind,
        namespaced_hint: bool,
    ) -> Result<Kind, String> {
        if let Some(kind) = self.kinds.lock().expect("kinds lock").get(gvk) {
            return Ok(kind.clone());
        }
        let Connection::Live(client) = connection else {
            return Ok(Kind {
                resource: ApiResource::from_gvk(gvk),
                namespaced: namespaced_hint,
            });
        };
        let what = format!("discovering {}/{} {}", gvk.group, gvk.version, gvk.kind);
        let group_version = GroupVersion::gv(&gvk.group, &gvk.version);
        let group = self
            .retry(|| pinned_group(client, &group_version))
            .await
            .map_err(|e| e.explain(&what, self.api_call_timeout))?;
        let mut kinds = self.kinds.lock().expect("kinds lock");
        for (resource, capabilities) in group.versioned_resources(&gvk.version) {
            let served = GroupVersionKind::gvk(&gvk.group, &gvk.version, &resource.kind);
            // Discovery lists top-level resources only; the first of a kind wins, as it did
            // for a lookup of one kind.
            kinds.entry(served).or_insert_with(|| Kind {
                resource,
                namespaced: capabilities.scope == Scope::Namespaced,
            });
        }
        kinds.get(gvk).cloned().ok_or_else(|| {
            format!(
                "{what}: the API server serves no kind {} in {}",
                gvk.kind,
                group_version.api_version()
            )
        })
    }

    /// Run `call` until it succeeds, fails for good, or the API-call timeout runs out.
    async fn retry<T, F, Fut>(&self, mut call: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let deadline = tokio::time::Instant::now() + self.api_call_timeout;
        let mut backoff = Duration::from_millis(100);
        let mut last = None;
        loop {
            match tokio::time::timeout_at(deadline, call()).await {
                Ok(Ok(value)) => return Ok(value),
                Ok(Err(e)) if transient(&e) => last = Some(e),
                Ok(Err(e)) => return Err(CallError::Api(e)),
                Err(_) => return Err(CallError::Timeout(last)),
            }
            if tokio::time::Instant::now() + backoff >= deadline {
                return Err(CallError::Timeout(last));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

/// A client from the kubeconfig `file` under the `kubeconfig` root, as this run sees it (in a
/// dry run, a planned admin.conf).
async fn client_from(host: &HostContext, file: &str) -> Result<Client, String> {
    client_for(&config_from(host, file).await?, file)
}

/// A client with `config` (from the kubeconfig `file`), with its own connection pool.
fn client_for(config: &Config, file: &str) -> Result<Client, String> {
    Client::try_from(config.clone()).map_err(|e| format!("{file} is not usable: {e}"))
}

/// The client settings of the kubeconfig `file` under the `kubeconfig` root, as this run sees
/// it (in a dry run, a planned admin.conf).
async fn config_from(host: &HostContext, file: &str) -> Result<Config, String> {
    let dir = host
        .roots
        .get("kubeconfig")
        .ok_or("there is no kubeconfig root to find admin.conf in")?;
    let path = dir.join(file);
    let bytes = host
        .effects
        .read(&path)
        .map_err(|e| format!("{e:#}"))?
        .ok_or_else(|| {
            format!(
                "{} does not exist: run the kubeconfig phase first",
                path.display()
            )
        })?;
    // The parser's errors can quote the file; the phase sees this message, so not when the
    // file holds key material.
    let secret = super::fs::holds_private_key(&bytes);
    let unusable = |e: &dyn std::fmt::Display| {
        if secret {
            format!(
                "{} is not a usable kubeconfig (details withheld: it holds private key material)",
                path.display()
            )
        } else {
            format!("{} is not usable: {e}", path.display())
        }
    };
    let kubeconfig =
        Kubeconfig::from_yaml(&String::from_utf8_lossy(&bytes)).map_err(|e| unusable(&e))?;
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .map_err(|e| unusable(&e))?;
    if let Some(server) = &host.kube.server {
        config.cluster_url = server
            .parse()
            .map_err(|e| format!("{server} is not a usable API server URL: {e}"))?;
    }
    Ok(config)
}

enum CallError {
    Api(kube::Error),
    /// The API-call timeout ran out; the last transient error, if any.
    Timeout(Option<kube::Error>),
}

impl CallError {
    fn explain(&self, what: &str, timeout: Duration) -> String {
        match self {
            CallError::Api(e) => format!("{what}: {}", describe(e)),
            CallError::Timeout(Some(e)) => format!(
                "{what}: no success within timeouts.kubernetesAPICall ({timeout:?}); last error: {}",
                describe(e)
            ),
            CallError::Timeout(None) => {
                format!("{what}: no answer within timeouts.kubernetesAPICall ({timeout:?})")
            }
        }
    }
}

/// The API server's message (which names the offending field) or the transport error.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            format!("{} ({} {})", status.message, status.code, status.reason)
        }
        other => format!("{other}"),
    }
}

fn status(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Errors worth another try: conflicts, throttling, server trouble, connection failures.
fn transient(error: &kube::Error) -> bool {
    match error {
        // 409 is also AlreadyExists, which another try does not change.
        kube::Error::Api(status) if status.code == 409 => status.reason == "Conflict",
        kube::Error::Api(status) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
        kube::Error::HyperError(_) | kube::Error::Service(_) => true,
        _ => false,
    }
}

/// `Kind namespace/name`, as plans, journals and errors name an object.
fn target(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// The object with the values of a Secret's data withheld, for the plan.
fn withhold_secrets(mut object: serde_json::Value) -> serde_json::Value {
    if object["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(map) = object.get_mut(field).and_then(|v| v.as_object_mut()) {
                for value in map.values_mut() {
                    *value = serde_json::Value::String("(withheld)".into());
                }
            }
        }
    }
    object
}

/// The group-version-kind of `api_version` and `kind`.
fn gvk(api_version: &str, kind: &str) -> GroupVersionKind {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    GroupVersionKind::gvk(group, version, kind)
}

impl PhaseState {
    fn journal_api(
        &self,
        operation: &str,
        target: &str,
        result: &Result<(), String>,
        started: Instant,
    ) {
        if let Some(journal) = self.host.effects.journal() {
            journal.append(
                &self.origin,
                Entry {
                    capability: "kube",
                    operation,
                    target,
                    outcome: if result.is_ok() {
                        Outcome::Ok
                    } else {
                        Outcome::Error
                    },
                    detail: result.as_ref().err().map(String::as_str),
                    duration: started.elapsed(),
                },
            );
        }
    }

    /// Deny `verb` in `namespace` before connecting when no rule of the grant could allow it,
    /// whatever the resource: a phase without a kube grant never reaches the API server.
    fn authorize_early(
        &self,
        verb: &str,
        namespace: Option<&str>,
        what: &str,
    ) -> Result<(), PhaseError> {
        let any = |items: &[String], wanted: &str| items.iter().any(|i| i == "*" || i == wanted);
        // Scope mistakes (a namespace on a cluster-scoped kind) are left to `resolve`.
        let possible = self.grant.kube.iter().any(|rule| {
            any(&rule.verbs, verb)
                && namespace
                    .is_none_or(|ns| rule.namespaces.is_empty() || any(&rule.namespaces, ns))
        });
        if possible {
            Ok(())
        } else {
            Err(self.deny("kube", format!("{verb} {what}")))
        }
    }

    /// Deny `verb` on `kind` in `namespace` unless the grant allows it.
    fn authorize(
        &self,
        verb: &str,
        kind: &Kind,
        namespace: Option<&str>,
        what: &str,
    ) -> Result<(), PhaseError> {
        if self.grant.allows_kube(verb, &kind.grant_name(), namespace) {
            Ok(())
        } else {
            Err(self.deny("kube", format!("{verb} {what} ({})", kind.grant_name())))
        }
    }
}

/// The kind of `gvk` (connecting first), checked against the namespace the call names.
async fn resolve(
    host: &HostContext,
    phase: &str,
    verb: &str,
    gvk: &GroupVersionKind,
    namespace: Option<&str>,
    what: &str,
) -> Result<Kind, PhaseError> {
    let failed = |why: String| PhaseError::Failed(format!("kube {verb} {what}: {why}"));
    let connection = host.kube.connection(host, phase).await.map_err(failed)?;
    let kind = host
        .kube
        .kind(connection, gvk, namespace.is_some())
        .await
        .map_err(failed)?;
    let scope_error = |reason: String| {
        PhaseError::InvalidConfig(crate::runtime::bindings::FieldError {
            field: "metadata.namespace".into(),
            reason: format!("kube {verb} {what}: {reason}"),
        })
    };
    match (kind.namespaced, namespace) {
        (true, None) => Err(scope_error(format!(
            "{} is namespaced; name its namespace",
            gvk.kind
        ))),
        (false, Some(ns)) => Err(scope_error(format!(
            "{} is cluster-scoped, but namespace {ns:?} was given",
            gvk.kind
        ))),
        _ => Ok(kind),
    }
}

impl PhaseState {
    /// Check a call on `object` against the grant and resolve its kind: the checks every
    /// object-addressed call (get, wait, patch, delete) makes before it reaches the API.
    async fn prepare(
        &mut self,
        verb: &str,
        object: &ObjectRef,
    ) -> Result<(Kind, String), PhaseError> {
        let gvk = gvk(&object.api_version, &object.kind);
        let namespace = object.namespace.as_deref();
        check_path_segments(verb, namespace, &object.name)?;
        let what = target(&object.kind, namespace, &object.name);
        self.authorize_early(verb, namespace, &what)?;
        let kind = resolve(&self.host, &self.origin.phase, verb, &gvk, namespace, &what).await?;
        self.authorize(verb, &kind, namespace, &what)?;
        Ok((kind, what))
    }
}

/// The object as this run sees it: planned by the dry run, else in the cluster (none when a dry
/// run has no cluster). No grant check: callers have made theirs.
async fn current(
    host: &HostContext,
    kind: &Kind,
    what: &str,
    object: &ObjectRef,
) -> Result<Option<String>, PhaseError> {
    if let Some(planned) = host.kube.planned.lock().expect("planned lock").get(what) {
        return Ok(planned.as_ref().map(|v| v.to_string()));
    }
    let Some(client) = live(host) else {
        return Ok(None);
    };
    let api = api(client, kind, object.namespace.as_deref());
    let found = host
        .kube
        .retry(|| api.get_opt(&object.name))
        .await
        .map_err(|e| {
            PhaseError::Failed(e.explain(&format!("kube get {what}"), host.kube.api_call_timeout))
        })?;
    found
        .map(|o| serde_json::to_string(&o))
        .transpose()
        .map_err(|e| PhaseError::Failed(format!("kube get {what}: {e}")))
}

/// Whether `object` satisfies a `wait`: it exists, and has the condition if one is named.
fn satisfies(object: &serde_json::Value, condition: Option<&str>) -> bool {
    let Some(condition) = condition else {
        return true;
    };
    object["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == condition && c["status"] == "True")
        })
}

/// The `Api` for `kind` in `namespace`.
fn api(client: &Client, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &kind.resource),
        None => Api::all_with(client.clone(), &kind.resource),
    }
}

fn live(host: &HostContext) -> Option<&Client> {
    match host.kube.connection.get() {
        Some(Connection::Live(client)) => Some(client),
        _ => None,
    }
}

/// The values aliases may repeat in one manifest. A YAML parse holds ~0.7 KiB per value while
/// aliases expand, and the parser's own limit (250 000 values) let a 378-byte manifest hold
/// 75 MiB; written-out manifests (a CRD of thousands of values) are bounded by their size.
const MAX_MANIFEST_ALIAS_EVENTS: usize = 10_000;

/// A manifest a phase hands to `apply`, read.
struct Manifest {
    /// As written, for the plan and for reads in a dry run.
    value: serde_json::Value,
    object: DynamicObject,
    types: TypeMeta,
    name: String,
}

/// Reads the manifest a phase hands to `apply`: YAML or JSON, one Kubernetes object with
/// apiVersion, kind and name.
fn read_manifest(manifest: &str) -> Result<Manifest, PhaseError> {
    if manifest.len() > MAX_MANIFEST {
        return Err(PhaseError::Failed(format!(
            "kube apply: the manifest is {} bytes, more than the {MAX_MANIFEST} allowed",
            manifest.len()
        )));
    }
    let mut options = serde_saphyr::Options::default();
    options.alias_limits.max_total_replayed_events = MAX_MANIFEST_ALIAS_EVENTS;
    let value: serde_json::Value =
        serde_saphyr::from_str_with_options(manifest, options).map_err(|e| {
            PhaseError::Failed(format!("kube apply: the manifest is not YAML or JSON: {e}"))
        })?;
    let object: DynamicObject = serde_json::from_value(value.clone()).map_err(|e| {
        PhaseError::Failed(format!(
            "kube apply: the manifest is not a Kubernetes object: {e}"
        ))
    })?;
    let (Some(types), Some(name)) = (object.types.clone(), object.metadata.name.clone()) else {
        return Err(PhaseError::InvalidConfig(
            crate::runtime::bindings::FieldError {
                field: "apiVersion, kind, metadata.name".into(),
                reason: "kube apply: the manifest must have all three".into(),
            },
        ));
    };
    check_path_segments("apply", object.metadata.namespace.as_deref(), &name)?;
    Ok(Manifest {
        value,
        object,
        types,
        name,
    })
}

/// Refuse a name or namespace that is not one path segment of the API URL: kube-rs puts them
/// into the path as they are, so `x/../../secrets/y` would address another resource than the
/// grant was checked for. The API server's own rule (no `.`, `..`, `/` or `%`), plus the URL's
/// `?` and `#` and an empty name.
fn check_path_segments(verb: &str, namespace: Option<&str>, name: &str) -> Result<(), PhaseError> {
    let unusable = |segment: &str| {
        matches!(segment, "" | "." | "..") || segment.contains(['/', '%', '?', '#'])
    };
    let refuse = |field: &str, value: &str| {
        PhaseError::InvalidConfig(crate::runtime::bindings::FieldError {
            field: field.into(),
            reason: format!(
                "kube {verb}: {value:?} is not a usable {field}: it must be non-empty, not \".\" or \"..\", and contain none of / % ? #"
            ),
        })
    };
    if unusable(name) {
        return Err(refuse("metadata.name", name));
    }
    match namespace {
        Some(ns) if unusable(ns) => Err(refuse("metadata.namespace", ns)),
        _ => Ok(()),
    }
}

/// An object or patch as the plan shows it: YAML, Secret values withheld.
fn plan_yaml(object: &serde_json::Value) -> String {
    serde_saphyr::to_string(&withhold_secrets(object.clone()))
        .unwrap_or_else(|e| format!("(cannot render: {e})"))
}

impl Host for PhaseState {
    async fn apply(&mut self, manifest: String) -> wasmtime::Result<Result<String, PhaseError>> {
        let Manifest {
            value,
            object,
            types,
            name,
        } = match read_manifest(&manifest) {
            Ok(manifest) => manifest,
            Err(e) => return Ok(Err(e)),
        };
        let gvk = gvk(&types.api_version, &types.kind);
        let namespace = object.metadata.namespace.clone();
        let what = target(&types.kind, namespace.as_deref(), &name);
        let host = self.host.clone();
        if let Err(e) = self.authorize_early("apply", namespace.as_deref(), &what) {
            return Ok(Err(e));
        }
        let kind = match resolve(
            &host,
            &self.origin.phase,
            "apply",
            &gvk,
            namespace.as_deref(),
            &what,
        )
        .await
        {
            Ok(kind) => kind,
            Err(e) => return Ok(Err(e)),
        };
        if let Err(e) = self.authorize("apply", &kind, namespace.as_deref(), &what) {
            return Ok(Err(e));
        }
        if host.effects.is_dry_run() {
            host.effects.plan_api_object(
                &self.origin.phase,
                "apply",
                &what,
                Some(plan_yaml(&value)),
            );
            host.kube
                .planned
                .lock()
                .expect("planned lock")
                .insert(what, Some(value.clone()));
            return Ok(Ok(value.to_string()));
        }
        let client = live(&host).expect("apply mode connects or fails");
        let api = api(client, &kind, namespace.as_deref());
        let started = Instant::now();
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&object);
        let result = host
            .kube
            .retry(|| api.patch(&name, &params, &patch))
            .await
            .map_err(|e| e.explain(&format!("kube apply {what}"), host.kube.api_call_timeout));
        self.journal_api(
            "apply",
            &what,
            &result.as_ref().map(|_| ()).map_err(Clone::clone),
            started,
        );
        Ok(match result {
            Ok(applied) => serde_json::to_string(&applied)
                .map_err(|e| PhaseError::Failed(format!("kube apply {what}: {e}"))),
            Err(why) => Err(PhaseError::Failed(why)),
        })
    }

    async fn get(
        &mut self,
        object: ObjectRef,
    ) -> wasmtime::Result<Result<Option<String>, PhaseError>> {
        let (kind, what) = match self.prepare("get", &object).await {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        Ok(current(&self.host, &kind, &what, &object).await)
    }

    async fn delete(&mut self, object: ObjectRef) -> wasmtime::Result<Result<bool, PhaseError>> {
        let (kind, what) = match self.prepare("delete", &object).await {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        let namespace = object.namespace.as_deref();
        let host = self.host.clone();
        let Some(client) = live(&host).filter(|_| !host.effects.is_dry_run()) else {
            // A dry run: the object existed if the plan or the cluster has it.
            let existed = match current(&host, &kind, &what, &object).await {
                Ok(found) => found.is_some(),
                Err(e) => return Ok(Err(e)),
            };
            if existed {
                host.effects
                    .plan_api_object(&self.origin.phase, "delete", &what, None);
                host.kube
                    .planned
                    .lock()
                    .expect("planned lock")
                    .insert(what, None);
            }
            return Ok(Ok(existed));
        };
        let api = api(client, &kind, namespace);
        let started = Instant::now();
        let params = DeleteParams::default();
        let result = host.kube.retry(|| api.delete(&object.name, &params)).await;
        let result = match result {
            Ok(_) => Ok(true),
            Err(CallError::Api(e)) if status(&e) == Some(404) => Ok(false),
            Err(e) => Err(e.explain(&format!("kube delete {what}"), host.kube.api_call_timeout)),
        };
        self.journal_api(
            "delete",
            &what,
            &result.as_ref().map(|_| ()).map_err(Clone::clone),
            started,
        );
        Ok(result.map_err(PhaseError::Failed))
    }

    async fn patch(
        &mut self,
        object: ObjectRef,
        patch: String,
    ) -> wasmtime::Result<Result<Option<String>, PhaseError>> {
        if patch.len() > MAX_MANIFEST {
            return Ok(Err(PhaseError::Failed(format!(
                "kube patch: the patch is {} bytes, more than the {MAX_MANIFEST} allowed",
                patch.len()
            ))));
        }
        let (kind, what) = match self.prepare("patch", &object).await {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        let merge: serde_json::Value = match serde_json::from_str(&patch) {
            Ok(merge) => merge,
            Err(e) => {
                return Ok(Err(PhaseError::Failed(format!(
                    "kube patch {what}: the patch is not JSON: {e}"
                ))));
            }
        };
        let host = self.host.clone();
        if host.effects.is_dry_run() {
            let current = match current(&host, &kind, &what, &object).await {
                Ok(Some(current)) => current,
                Ok(None) => return Ok(Ok(None)),
                Err(e) => return Ok(Err(e)),
            };
            let mut patched: serde_json::Value = serde_json::from_str(&current).unwrap_or_default();
            json_merge(&mut patched, &merge);
            host.effects.plan_api_object(
                &self.origin.phase,
                "patch",
                &what,
                Some(plan_yaml(&merge)),
            );
            let result = patched.to_string();
            host.kube
                .planned
                .lock()
                .expect("planned lock")
                .insert(what, Some(patched));
            return Ok(Ok(Some(result)));
        }
        let client = live(&host).expect("apply mode connects or fails");
        let api = api(client, &kind, object.namespace.as_deref());
        let started = Instant::now();
        let params = PatchParams::default();
        let merge = Patch::Merge(&merge);
        let result = match host
            .kube
            .retry(|| api.patch(&object.name, &params, &merge))
            .await
        {
            Ok(patched) => Ok(Some(patched)),
            Err(CallError::Api(e)) if status(&e) == Some(404) => Ok(None),
            Err(e) => Err(e.explain(&format!("kube patch {what}"), host.kube.api_call_timeout)),
        };
        self.journal_api(
            "patch",
            &what,
            &result.as_ref().map(|_| ()).map_err(Clone::clone),
            started,
        );
        Ok(match result {
            Ok(patched) => patched
                .map(|o| serde_json::to_string(&o))
                .transpose()
                .map_err(|e| PhaseError::Failed(format!("kube patch {what}: {e}"))),
            Err(why) => Err(PhaseError::Failed(why)),
        })
    }

    async fn wait(
        &mut self,
        object: ObjectRef,
        condition: Option<String>,
        timeout_seconds: u32,
    ) -> wasmtime::Result<Result<String, PhaseError>> {
        let (kind, what) = match self.prepare("get", &object).await {
            Ok(prepared) => prepared,
            Err(e) => return Ok(Err(e)),
        };
        let condition = condition.as_deref();
        let wanted = match condition {
            Some(condition) => format!("{what} to be {condition}"),
            None => format!("{what} to exist"),
        };
        let host = self.host.clone();
        let timeout = Duration::from_secs(timeout_seconds.into());
        let Some(client) = live(&host).filter(|_| !host.effects.is_dry_run()) else {
            // A dry run does not wait: the object is what the plan or the cluster has now.
            return Ok(match current(&host, &kind, &what, &object).await {
                Ok(Some(found)) => Ok(found),
                Ok(None) => Err(PhaseError::Conflict(format!(
                    "a dry run does not wait for {wanted}; it does not exist yet"
                ))),
                Err(e) => Err(e),
            });
        };
        let started = Instant::now();
        let namespace = object.namespace.as_deref();
        let until = async {
            // The object as it is now, on the pooled connection: usually it is already there
            // (the Node a kubelet registered). Only when it is not does the watch start.
            let pooled = api(client, &kind, namespace);
            if let Ok(Some(found)) = pooled.get_opt(&object.name).await {
                let value = serde_json::to_value(&found).map_err(|e| e.to_string())?;
                if satisfies(&value, condition) {
                    return Ok(value);
                }
            }
            // An HTTP/1.1 watch holds its connection until it is dropped, which closes it; the
            // watch gets a client of its own so the calls after it keep the pooled connection
            // (a new one costs a handshake and, resumed, a delayed-ACK stall of ~40 ms).
            let watcher = host
                .kube
                .watch_config
                .get()
                .and_then(|config| client_for(config, "admin.conf").ok());
            let watched = match &watcher {
                Some(watcher) => api(watcher, &kind, namespace),
                None => pooled,
            };
            watch_until(&watched, &object.name, condition).await
        };
        let result = tokio::time::timeout(timeout, until)
            .await
            .unwrap_or_else(|_| Err(format!("timed out after {timeout:?} waiting for {wanted}")));
        self.journal_api(
            "wait",
            &what,
            &result.as_ref().map(|_| ()).map_err(Clone::clone),
            started,
        );
        Ok(result
            .map(|found| found.to_string())
            .map_err(PhaseError::Failed))
    }
}

/// Watch `name` until it satisfies `condition`; a broken watch is re-established.
async fn watch_until(
    api: &Api<DynamicObject>,
    name: &str,
    condition: Option<&str>,
) -> Result<serde_json::Value, String> {
    use futures::TryStreamExt;
    let params = WatchParams::default()
        .fields(&format!("metadata.name={name}"))
        .timeout(290);
    let mut backoff = Duration::from_millis(100);
    loop {
        // Resource version "0": the watch starts with the object as it is now, if it exists.
        match api.watch(&params, "0").await {
            Ok(stream) => {
                let mut stream = std::pin::pin!(stream);
                loop {
                    match stream.try_next().await {
                        Ok(Some(WatchEvent::Added(o) | WatchEvent::Modified(o))) => {
                            let value = serde_json::to_value(&o).map_err(|e| e.to_string())?;
                            if satisfies(&value, condition) {
                                return Ok(value);
                            }
                        }
                        Ok(Some(_)) => {}
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            Err(e) if transient(&e) => {}
            Err(e) => return Err(describe(&e)),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// RFC 7386 JSON merge patch of `target` by `patch`.
fn json_merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    let target = target.as_object_mut().expect("made an object");
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            json_merge(
                target.entry(key.clone()).or_insert(serde_json::Value::Null),
                value,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_or_namespace_that_is_not_one_url_segment_is_refused() {
        for (namespace, name) in [
            (Some("kube-system"), "x/../../secrets/y"),
            (Some("kube-system"), ".."),
            (Some("kube-system"), ""),
            (Some("kube-system"), "a%2Fb"),
            (Some("kube-system"), "a?watch=true"),
            (Some("../default"), "cm"),
            (None, "."),
        ] {
            let manifest = serde_json::json!({
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": namespace},
            });
            let refused = read_manifest(&manifest.to_string());
            assert!(
                matches!(refused, Err(PhaseError::InvalidConfig(_))),
                "{namespace:?}/{name:?}"
            );
        }
        for name in [
            "kubeadm-config",
            "system:node",
            "cluster-info",
            "bootstrap-token-abcdef",
        ] {
            assert!(check_path_segments("get", Some("kube-system"), name).is_ok());
        }
    }

    #[test]
    fn rules_match_verbs_resources_and_scopes() {
        let rule = KubeRule::new(
            &["apply"],
            &["configmaps", "rbac.authorization.k8s.io/roles"],
            &["kube-system"],
        );
        assert!(rule.allows("apply", "configmaps", Some("kube-system")));
        assert!(!rule.allows("get", "configmaps", Some("kube-system")));
        assert!(!rule.allows("apply", "configmaps", Some("kube-public")));
        assert!(!rule.allows("apply", "configmaps", None));
        assert!(!rule.allows("apply", "secrets", Some("kube-system")));
        let cluster = KubeRule::new(&["*"], &["rbac.authorization.k8s.io/clusterroles"], &[]);
        assert!(cluster.allows("delete", "rbac.authorization.k8s.io/clusterroles", None));
        assert!(!cluster.allows(
            "delete",
            "rbac.authorization.k8s.io/clusterroles",
            Some("x")
        ));
        let everywhere = KubeRule::new(&["get"], &["*"], &["*"]);
        assert!(everywhere.allows("get", "secrets", Some("any")));
        assert!(!everywhere.allows("get", "nodes", None));
    }

    #[test]
    fn missing_lists_each_uncovered_triple() {
        let grant = Grant {
            kube: vec![KubeRule::new(&["apply"], &["configmaps"], &["kube-system"])],
            ..Grant::default()
        };
        let requested = [crate::runtime::bindings::KubeRule {
            verbs: vec!["apply".into(), "delete".into()],
            resources: vec!["configmaps".into()],
            namespaces: vec!["kube-system".into(), "kube-public".into()],
        }];
        assert_eq!(
            grant.missing_kube(&requested),
            [
                "kube: apply configmaps in namespace kube-public",
                "kube: delete configmaps in namespace kube-system",
                "kube: delete configmaps in namespace kube-public",
            ]
        );
    }

    #[test]
    fn unknown_verbs_are_refused_by_name() {
        let grant = Grant {
            kube: vec![KubeRule::new(&["*"], &["*"], &["*"])],
            ..Grant::default()
        };
        let requested = [crate::runtime::bindings::KubeRule {
            verbs: vec!["create".into()],
            resources: vec!["configmaps".into()],
            namespaces: vec!["kube-system".into()],
        }];
        assert_eq!(
            grant.missing_kube(&requested),
            ["kube: unknown verb \"create\" (the verbs are get, apply, patch, delete)"]
        );
    }

    #[test]
    fn plans_withhold_secret_values() {
        let secret = serde_json::json!({"kind": "Secret", "data": {"token-secret": "c2VjcmV0"}});
        assert_eq!(
            withhold_secrets(secret)["data"]["token-secret"],
            "(withheld)"
        );
        assert_eq!(
            gvk("v1", "ConfigMap"),
            GroupVersionKind::gvk("", "v1", "ConfigMap")
        );
        assert_eq!(
            gvk("rbac.authorization.k8s.io/v1", "Role"),
            GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", "Role")
        );
    }
}

#[cfg(test)]
mod fuzz {
    use proptest::prelude::*;
    use proptest::sample::select;
    use serde_json::{Value, json};

    use super::*;
    use crate::fuzzing::{alias_bomb, fuzz, json_value, odd_text};

    /// An object a phase may apply: plausible type fields and metadata, or anything in their
    /// place, any data.
    fn object() -> impl Strategy<Value = Value> {
        let api_version = prop_oneof![
            select(vec![
                "v1",
                "apps/v1",
                "rbac.authorization.k8s.io/v1",
                "/",
                "a/b/c"
            ])
            .prop_map(Value::from),
            json_value(),
        ];
        let kind = prop_oneof![
            select(vec![
                "ConfigMap",
                "Secret",
                "Deployment",
                "ClusterRoleBinding"
            ])
            .prop_map(Value::from),
            json_value(),
        ];
        let metadata = prop_oneof![
            (odd_text(), prop::option::of(odd_text()))
                .prop_map(|(name, namespace)| json!({"name": name, "namespace": namespace})),
            json_value(),
        ];
        (api_version, kind, metadata, json_value()).prop_map(
            |(api_version, kind, metadata, data)| {
                json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "data": data})
            },
        )
    }

    /// Manifest text: an object as YAML or JSON, a ConfigMap whose data is an alias bomb, or
    /// any text.
    fn manifest() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (object(), any::<bool>()).prop_map(|(object, as_yaml)| if as_yaml {
                kubeforge_api::yaml::to_string(&object)
            } else {
                object.to_string()
            }),
            1 => (2..12usize, 1..10usize).prop_map(|(fanout, levels)| format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n{}",
                alias_bomb(fanout, levels)
            )),
            1 => odd_text(),
        ]
    }

    fn explains(error: &PhaseError) -> bool {
        match error {
            PhaseError::InvalidConfig(field) => !field.field.is_empty() && !field.reason.is_empty(),
            PhaseError::Failed(why) | PhaseError::Conflict(why) => !why.is_empty(),
            PhaseError::Denied(denial) => !denial.target.is_empty(),
        }
    }

    /// Found by `apply_manifest`: a ConfigMap of 5^7 nested aliases (328 bytes) held 76 MiB
    /// while it expanded.
    #[test]
    fn manifest_alias_bomb_is_refused() {
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\ndata:\n{}",
            alias_bomb(5, 7)
        );
        let Err(PhaseError::Failed(why)) = read_manifest(&manifest) else {
            panic!("the bomb was read");
        };
        assert!(why.contains("alias"), "{why}");
    }

    #[test]
    fn apply_manifest() {
        fuzz(manifest(), |text| match read_manifest(&text) {
            Ok(manifest) => {
                gvk(&manifest.types.api_version, &manifest.types.kind);
                plan_yaml(&manifest.value);
                // What server-side apply sends.
                serde_json::to_vec(&manifest.object).expect("a read object serializes");
            }
            Err(error) => assert!(explains(&error), "{error:?}"),
        });
    }

    #[test]
    fn patch() {
        let patch_text = prop_oneof![
            3 => json_value().prop_map(|patch| patch.to_string()),
            1 => (1..300usize).prop_map(|depth| format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth))),
            1 => odd_text(),
        ];
        fuzz((object(), patch_text), |(mut current, patch)| {
            // As a dry run's `patch` does, on the object the plan holds.
            let Ok(merge) = serde_json::from_str::<Value>(&patch) else {
                return;
            };
            json_merge(&mut current, &merge);
            plan_yaml(&merge);
            current.to_string();
        });
    }
}
