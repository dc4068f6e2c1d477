//! Mirror pods: the API objects a kubelet keeps for the static pods it runs,
//! so that the cluster sees them. kubeadm relies on them: reading the
//! cluster's configuration (`certs check-expiration` without `--config`,
//! `upgrade plan`, `reset`, `join --control-plane`), it takes a control-plane
//! node's advertise address from the annotation
//! `kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint` of the
//! node's kube-apiserver mirror pod (kube-system, labels
//! `component=kube-apiserver,tier=control-plane`, `spec.nodeName=<node>`).
//!
//! Once the Node is registered, every [`SYNC_INTERVAL`] the emulation does
//! what the kubelet's pod workers do with its mirror client
//! (`pkg/kubelet/pod/mirror_client.go`) for the file source
//! (`pkg/kubelet/config/common.go`, `config.go`), all with kubelet.conf's
//! identity (`system:node:<name>`, which NodeRestriction judges):
//!
//! * **create** the mirror pod of each static pod the stand-in runs: name
//!   `<pod name>-<node name>` (node name lower-cased), the manifest's
//!   namespace (`default` if none), its labels and annotations plus
//!   `kubernetes.io/config.hash` (the static pod's hash),
//!   `kubernetes.io/config.mirror` (the same hash: what marks a mirror pod),
//!   `kubernetes.io/config.source: file` and `kubernetes.io/config.seen`
//!   (when this kubelet run first saw that content, RFC 3339 with
//!   nanoseconds); the manifest's spec with `nodeName` set and the toleration
//!   `{operator: Exists, effect: NoExecute}` the kubelet adds to file pods;
//!   the owner reference NodeRestriction requires of a mirror pod (`v1`
//!   `Node` `<name>`, its uid, `controller: true`); field manager `kubelet`;
//! * **replace** a mirror pod whose `config.mirror` hash is not its static
//!   pod's (the manifest changed and the stand-in runs the new content) or
//!   that is being deleted: delete it (grace period 0, uid precondition) and
//!   create the new one;
//! * **delete** mirror pods bound to this node whose static pod is gone (the
//!   manifest was removed, or became invalid);
//! * **report the pod status** through `pods/status` (strategic merge patch,
//!   only when it differs from what the API holds): phase `Running` once a
//!   container has been started (`Pending` before); conditions
//!   `PodReadyToStartContainers`, `Initialized`, `PodScheduled` true, and
//!   `ContainersReady`/`Ready` true while every container's process is up and
//!   its probe (readiness, else startup, else liveness, as `StandIn::probe`;
//!   a container without an HTTP probe once it has run for a second)
//!   succeeds, false otherwise; `containerStatuses` with `ready`, `started`,
//!   `restartCount` (starts - 1), `state` (`running` since the process start,
//!   `waiting` `CrashLoopBackOff` / `ContainerCreating` /
//!   `CreateContainerError`, or `terminated` with the exit code) and
//!   `lastState` (the last exit); `startTime` (first seen).
//!
//! A stopped kubelet leaves its mirror pods as they are, like the real one.
//!
//! Deliberate differences from the kubelet:
//! * The config hash is FNV-1a 128 (hex, 32 digits, like the kubelet's) over
//!   the manifest's bytes, `host:<node>` and `file:<path on the node>`; the
//!   kubelet hashes the decoded Pod object instead (`hash.DeepHashObject`),
//!   so the values differ from a real kubelet's and a change that does not
//!   alter the object (a comment, indentation) changes this hash.
//! * The spec is the manifest's as written: the kubelet sends it after
//!   decoding with defaults; the API server applies the same defaults on
//!   create.
//! * No `hostIP`/`podIP` in the status (the Node has no addresses either), no
//!   image IDs; `containerID` is `kubeforge-testenv://<pid>`.
//! * It polls (the stand-in's state and a List of the node's pods) instead of
//!   watching.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Node, Pod, PodCondition, PodStatus, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};

use super::{FIELD_MANAGER, Kubelet, describe_api_error};
use crate::manifest::HttpProbe;
use crate::{ExitEvent, Phase};

/// How often the mirror pods and their status are brought in step.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Timeout of one readiness probe made for the pod status.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The static pod's hash on a mirror pod; its presence makes a pod a mirror pod.
pub const CONFIG_MIRROR: &str = "kubernetes.io/config.mirror";
/// The static pod's hash (the kubelet's UID of the static pod).
pub const CONFIG_HASH: &str = "kubernetes.io/config.hash";
/// Where the kubelet got the pod: `file` for static pod manifests.
pub const CONFIG_SOURCE: &str = "kubernetes.io/config.source";
/// When the kubelet first saw the pod.
pub const CONFIG_SEEN: &str = "kubernetes.io/config.seen";

/// A static pod the stand-in runs, as the emulation sees it.
#[derive(Debug, Clone)]
pub(crate) struct StaticPod {
    /// The manifest's path on the node (`/etc/kubernetes/manifests/<file>`):
    /// the kubelet's source of the pod.
    pub(crate) source: String,
    /// The content the stand-in runs (a changed file counts once the
    /// supervisor has acted on it).
    pub(crate) content: Vec<u8>,
    pub(crate) containers: Vec<ContainerRun>,
}

/// One container of a [`StaticPod`], as the supervisor runs it.
#[derive(Debug, Clone)]
pub(crate) struct ContainerRun {
    pub(crate) name: String,
    pub(crate) phase: Phase,
    pub(crate) pid: Option<u32>,
    /// When the current process started.
    pub(crate) started_at: Option<SystemTime>,
    pub(crate) up_for: Option<Duration>,
    pub(crate) starts: u32,
    pub(crate) probe: Option<HttpProbe>,
    pub(crate) last_exit: Option<ExitEvent>,
}

/// The supervisor's static pods, read on every sync.
pub(crate) type StaticPods = Arc<dyn Fn() -> Vec<StaticPod> + Send + Sync>;

/// FNV-1a 128 of the manifest, the node and the source, in hex.
pub fn config_hash(content: &[u8], node: &str, source: &str) -> String {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let host = format!("host:{node}");
    let file = format!("file:{source}");
    let mut h = OFFSET;
    for b in content.iter().chain(host.as_bytes()).chain(file.as_bytes()) {
        h ^= u128::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    format!("{h:032x}")
}

/// The name the kubelet gives a static pod (and its mirror pod).
pub fn mirror_pod_name(pod_name: &str, node: &str) -> String {
    format!("{pod_name}-{}", node.to_lowercase())
}

/// `2006-01-02T15:04:05.000000000Z07:00` (the kubelet's
/// `RFC3339NanoFixed`), in UTC.
fn seen_string(t: Timestamp) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(t.as_nanosecond())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::try_from(t).unwrap_or_else(|_| Timestamp::now())
}

/// The mirror pod a static pod should have.
#[derive(Debug, Clone)]
pub(crate) struct Desired {
    pub(crate) namespace: String,
    pub(crate) name: String,
    pub(crate) hash: String,
    /// The mirror pod to create, without `config.seen` and the owner
    /// reference (added at creation).
    pub(crate) pod: Pod,
    pub(crate) static_pod: StaticPod,
}

/// Builds the mirror pod of a static pod, as the kubelet's file source and
/// mirror client do.
pub(crate) fn desired_mirror_pod(sp: &StaticPod, node: &str) -> Result<Desired> {
    let text = std::str::from_utf8(&sp.content).context("the manifest is not UTF-8")?;
    let value: serde_json::Value = serde_saphyr::from_str(text).context("parsing the manifest")?;
    let manifest: Pod = serde_json::from_value(value).context("the manifest is not a v1 Pod")?;
    let pod_name = manifest
        .metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .context("the manifest's pod has no name")?;
    let hash = config_hash(&sp.content, node, &sp.source);
    let name = mirror_pod_name(&pod_name, node);
    let namespace = manifest
        .metadata
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into());
    let mut annotations = manifest.metadata.annotations.clone().unwrap_or_default();
    annotations.insert(CONFIG_HASH.into(), hash.clone());
    annotations.insert(CONFIG_SOURCE.into(), "file".into());
    annotations.insert(CONFIG_MIRROR.into(), hash.clone());
    let mut spec = manifest
        .spec
        .clone()
        .context("the manifest's pod has no spec")?;
    spec.node_name = Some(node.to_string());
    // helper.AddOrUpdateTolerationInPod: file pods tolerate every NoExecute taint.
    let toleration = Toleration {
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Toleration::default()
    };
    let tolerations = spec.tolerations.get_or_insert_with(Vec::new);
    if !tolerations.iter().any(|t| {
        t.key.as_deref().unwrap_or("").is_empty()
            && t.operator.as_deref() == Some("Exists")
            && t.value.as_deref().unwrap_or("").is_empty()
            && t.effect.as_deref() == Some("NoExecute")
    }) {
        tolerations.push(toleration);
    }
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: manifest.metadata.labels.clone(),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    };
    Ok(Desired {
        namespace,
        name,
        hash,
        pod,
        static_pod: sp.clone(),
    })
}

/// When this kubelet run first saw a static pod's content.
#[derive(Debug, Clone)]
struct Seen {
    annotation: String,
    at: Timestamp,
}

/// The sync loop of one kubelet run (its state is forgotten on restart, like
/// the kubelet's).
pub(crate) struct MirrorSync<'a> {
    kubelet: &'a Kubelet,
    client: kube::Client,
    node: String,
    identity: String,
    /// By config hash.
    seen: HashMap<String, Seen>,
    /// Ready and since when, by config hash.
    ready: HashMap<String, (bool, Timestamp)>,
    /// The last problem logged per subject (identical ones are not repeated).
    problems: BTreeMap<String, String>,
}

impl<'a> MirrorSync<'a> {
    pub(crate) fn new(
        kubelet: &'a Kubelet,
        client: kube::Client,
        node: String,
        identity: String,
    ) -> MirrorSync<'a> {
        MirrorSync {
            kubelet,
            client,
            node,
            identity,
            seen: HashMap::new(),
            ready: HashMap::new(),
            problems: BTreeMap::new(),
        }
    }

    /// Syncs until the kubelet run is aborted.
    pub(crate) async fn run(mut self) {
        self.kubelet.log.info(&format!(
            "Syncing mirror pods of the static pods in /etc/kubernetes/manifests every {}s as {}",
            SYNC_INTERVAL.as_secs(),
            self.identity
        ));
        loop {
            match self.sync_once().await {
                Ok(()) => self.clear("sync"),
                Err(e) => self.report("sync", format!("{e:#}")),
            }
            tokio::time::sleep(SYNC_INTERVAL).await;
        }
    }

    fn report(&mut self, subject: &str, msg: String) {
        if self.problems.get(subject) != Some(&msg) {
            self.kubelet.log.warn(&format!(
                "{msg} (retrying every {}s; identical errors are not logged again)",
                SYNC_INTERVAL.as_secs()
            ));
            self.problems.insert(subject.to_string(), msg);
        }
    }

    fn clear(&mut self, subject: &str) {
        self.problems.remove(subject);
    }

    async fn sync_once(&mut self) -> Result<()> {
        // What the stand-in runs.
        let mut desired: BTreeMap<(String, String), Desired> = BTreeMap::new();
        for sp in (self.kubelet.static_pods)() {
            match desired_mirror_pod(&sp, &self.node) {
                Ok(d) => {
                    self.clear(&sp.source);
                    desired.insert((d.namespace.clone(), d.name.clone()), d);
                }
                Err(e) => self.report(
                    &sp.source.clone(),
                    format!("No mirror pod for {}: {e:#}", sp.source),
                ),
            }
        }
        self.seen
            .retain(|hash, _| desired.values().any(|d| d.hash == *hash));
        self.ready
            .retain(|hash, _| desired.values().any(|d| d.hash == *hash));
        for d in desired.values() {
            self.seen.entry(d.hash.clone()).or_insert_with(|| {
                let at = Timestamp::now();
                Seen {
                    annotation: seen_string(at),
                    at,
                }
            });
        }

        // What the API holds for this node.
        let all: Api<Pod> = Api::all(self.client.clone());
        let list = all
            .list(&ListParams::default().fields(&format!("spec.nodeName={}", self.node)))
            .await
            .map_err(|e| {
                anyhow!(
                    "Unable to list the pods bound to node {}: {}",
                    self.node,
                    describe_api_error(&e)
                )
            })?;
        let mut current: BTreeMap<(String, String), Pod> = BTreeMap::new();
        for pod in list.items {
            let key = (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            );
            let Some(mirror) = pod
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(CONFIG_MIRROR))
                .cloned()
            else {
                continue;
            };
            let why = match desired.get(&key) {
                None => Some("its static pod is gone".to_string()),
                Some(_) if pod.metadata.deletion_timestamp.is_some() => {
                    Some("it is being deleted".to_string())
                }
                Some(d) if mirror != d.hash => Some(format!(
                    "its config hash {mirror} is not the static pod's {}",
                    d.hash
                )),
                Some(_) => None,
            };
            match why {
                None => {
                    current.insert(key, pod);
                }
                Some(why) => self.delete(&key, pod.metadata.uid.clone(), &why).await,
            }
        }

        // Create the missing ones.
        let mut node_uid: Option<String> = None;
        for (key, d) in &desired {
            if current.contains_key(key) {
                continue;
            }
            let uid = match &node_uid {
                Some(u) => u.clone(),
                None => {
                    let u = self.node_uid().await?;
                    node_uid = Some(u.clone());
                    u
                }
            };
            let subject = format!("create {}/{}", key.0, key.1);
            match self.create(d, &uid).await {
                Ok(pod) => {
                    self.clear(&subject);
                    self.kubelet.log.info(&format!(
                        "Created mirror pod {}/{} (config hash {}, from {}) as {}",
                        key.0, key.1, d.hash, d.static_pod.source, self.identity
                    ));
                    current.insert(key.clone(), pod);
                }
                Err(msg) => self.report(
                    &subject,
                    format!("Failed creating a mirror pod {}/{}: {msg}", key.0, key.1),
                ),
            }
        }
        self.kubelet.lock().mirror_pods = current
            .keys()
            .map(|(ns, name)| format!("{ns}/{name}"))
            .collect();

        // Their status.
        let ready = probe_all(current.keys().filter_map(|k| desired.get(k))).await;
        for (key, pod) in &current {
            if let Some(d) = desired.get(key) {
                self.update_status(d, pod, &ready).await;
            }
        }
        Ok(())
    }

    async fn node_uid(&self) -> Result<String> {
        let node = Api::<Node>::all(self.client.clone())
            .get(&self.node)
            .await
            .map_err(|e| {
                anyhow!(
                    "failed to get node UID: node {}: {}",
                    self.node,
                    describe_api_error(&e)
                )
            })?;
        node.metadata
            .uid
            .filter(|u| !u.is_empty())
            .ok_or_else(|| anyhow!("failed to get node UID: UID unset for node {}", self.node))
    }

    async fn create(&self, d: &Desired, node_uid: &str) -> std::result::Result<Pod, String> {
        let mut pod = d.pod.clone();
        if let Some(seen) = self.seen.get(&d.hash) {
            pod.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(CONFIG_SEEN.into(), seen.annotation.clone());
        }
        pod.metadata.owner_references = Some(vec![OwnerReference {
            api_version: "v1".into(),
            kind: "Node".into(),
            name: self.node.clone(),
            uid: node_uid.into(),
            controller: Some(true),
            block_owner_deletion: None,
        }]);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &d.namespace);
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        api.create(&pp, &pod)
            .await
            .map_err(|e| describe_api_error(&e))
    }

    async fn delete(&mut self, key: &(String, String), uid: Option<String>, why: &str) {
        let (ns, name) = key;
        let api: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        let subject = format!("delete {ns}/{name}");
        match api.delete(name, &dp).await {
            Ok(_) => {
                self.clear(&subject);
                self.kubelet
                    .log
                    .info(&format!("Deleted mirror pod {ns}/{name}: {why}"));
            }
            // Gone already, or replaced by another pod of that name.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => self.report(
                &subject,
                format!(
                    "Failed deleting mirror pod {ns}/{name} ({why}): {}",
                    describe_api_error(&e)
                ),
            ),
        }
    }

    async fn update_status(
        &mut self,
        d: &Desired,
        pod: &Pod,
        ready: &HashMap<(String, String), bool>,
    ) {
        let status = self.status(d, ready);
        let have = pod.status.clone().unwrap_or_default();
        if signature(&have) == signature(&status) {
            return;
        }
        let was_ready = condition(&have, "Ready");
        let now_ready = condition(&status, "Ready");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &d.namespace);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let patch = serde_json::json!({ "status": status });
        let subject = format!("status {}/{}", d.namespace, d.name);
        match api
            .patch_status(&d.name, &pp, &Patch::Strategic(&patch))
            .await
        {
            Ok(_) => {
                self.clear(&subject);
                if was_ready != now_ready {
                    self.kubelet.log.info(&format!(
                        "Status of mirror pod {}/{}: phase {}, Ready={}",
                        d.namespace,
                        d.name,
                        status.phase.as_deref().unwrap_or(""),
                        now_ready.unwrap_or("Unknown")
                    ));
                }
            }
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => self.report(
                &subject,
                format!(
                    "Failed updating the status of mirror pod {}/{}: {}",
                    d.namespace,
                    d.name,
                    describe_api_error(&e)
                ),
            ),
        }
    }

    /// The pod status the kubelet would report for a static pod.
    fn status(&mut self, d: &Desired, ready: &HashMap<(String, String), bool>) -> PodStatus {
        let seen = self.seen.get(&d.hash).map_or_else(Timestamp::now, |s| s.at);
        let spec_containers = d
            .pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        let runs = &d.static_pod.containers;
        let mut statuses = Vec::new();
        for c in &spec_containers {
            let run = runs.iter().find(|r| r.name == c.name);
            let is_ready = ready
                .get(&(d.hash.clone(), c.name.clone()))
                .copied()
                .unwrap_or(false);
            statuses.push(container_status(c, run, is_ready));
        }
        let all_ready = !statuses.is_empty() && statuses.iter().all(|s| s.ready);
        let ever_started = runs.iter().any(|r| r.starts > 0);
        let since = match self.ready.get(&d.hash) {
            Some((r, at)) if *r == all_ready => *at,
            _ => {
                let at = Timestamp::now();
                self.ready.insert(d.hash.clone(), (all_ready, at));
                at
            }
        };
        let cond = |type_: &str, ok: bool, at: Timestamp| PodCondition {
            type_: type_.into(),
            status: if ok { "True" } else { "False" }.into(),
            last_transition_time: Some(Time(at)),
            ..PodCondition::default()
        };
        let not_ready = |mut c: PodCondition| {
            if c.status == "False" {
                let waiting: Vec<&str> = statuses
                    .iter()
                    .filter(|s| !s.ready)
                    .map(|s| s.name.as_str())
                    .collect();
                c.reason = Some("ContainersNotReady".into());
                c.message = Some(format!(
                    "containers with unready status: [{}]",
                    waiting.join(" ")
                ));
            }
            c
        };
        PodStatus {
            phase: Some(if ever_started { "Running" } else { "Pending" }.into()),
            conditions: Some(vec![
                cond("PodReadyToStartContainers", true, seen),
                cond("Initialized", true, seen),
                not_ready(cond("Ready", all_ready, since)),
                not_ready(cond("ContainersReady", all_ready, since)),
                cond("PodScheduled", true, seen),
            ]),
            start_time: Some(Time(seen)),
            container_statuses: Some(statuses.clone()),
            ..PodStatus::default()
        }
    }
}

fn container_status(
    c: &k8s_openapi::api::core::v1::Container,
    run: Option<&ContainerRun>,
    ready: bool,
) -> ContainerStatus {
    let terminated = |e: &ExitEvent| ContainerStateTerminated {
        exit_code: e.code.unwrap_or(128 + e.signal.unwrap_or(0)),
        signal: e.signal,
        reason: Some(
            if e.code == Some(0) {
                "Completed"
            } else {
                "Error"
            }
            .into(),
        ),
        started_at: e.at.checked_sub(e.ran_for).map(|t| Time(timestamp(t))),
        finished_at: Some(Time(timestamp(e.at))),
        ..ContainerStateTerminated::default()
    };
    let waiting = |reason: &str, message: Option<String>| ContainerState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(reason.into()),
            message,
        }),
        ..ContainerState::default()
    };
    let (state, last_state) = match run {
        None => (waiting("ContainerCreating", None), None),
        Some(r) => {
            let last = r.last_exit.as_ref().map(|e| ContainerState {
                terminated: Some(terminated(e)),
                ..ContainerState::default()
            });
            let state = match (&r.phase, r.pid) {
                (_, Some(_)) => ContainerState {
                    running: Some(ContainerStateRunning {
                        started_at: r.started_at.map(|t| Time(timestamp(t))),
                    }),
                    ..ContainerState::default()
                },
                (Phase::Exited, None) => match &r.last_exit {
                    Some(e) => ContainerState {
                        terminated: Some(terminated(e)),
                        ..ContainerState::default()
                    },
                    None => waiting("ContainerCreating", None),
                },
                (Phase::Failed(msg), None) => waiting("CreateContainerError", Some(msg.clone())),
                (_, None) if r.last_exit.is_some() => waiting(
                    "CrashLoopBackOff",
                    Some(format!("back-off restarting failed container {}", r.name)),
                ),
                (_, None) => waiting("ContainerCreating", None),
            };
            let last = if matches!(r.phase, Phase::Exited) && r.pid.is_none() {
                None
            } else {
                last
            };
            (state, last)
        }
    };
    let running = state.running.is_some();
    ContainerStatus {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        image_id: String::new(),
        container_id: run
            .and_then(|r| r.pid)
            .map(|pid| format!("kubeforge-testenv://{pid}")),
        ready: ready && running,
        started: Some(running),
        restart_count: run.map_or(0, |r| {
            i32::try_from(r.starts.saturating_sub(1)).unwrap_or(i32::MAX)
        }),
        state: Some(state),
        last_state: last_state.or_else(|| Some(ContainerState::default())),
        ..ContainerStatus::default()
    }
}

/// The status of a condition type, if present.
fn condition<'s>(s: &'s PodStatus, type_: &str) -> Option<&'s str> {
    s.conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.as_str())
}

/// What decides whether the API's status needs an update: the phase, the
/// conditions the kubelet owns, and each container's readiness, restarts and
/// state kind.
fn signature(s: &PodStatus) -> (Option<String>, Vec<Option<String>>, Vec<String>) {
    let conditions = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ]
    .iter()
    .map(|t| condition(s, t).map(str::to_string))
    .collect();
    let containers = s
        .container_statuses
        .as_ref()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    let state = c.state.as_ref().map_or("none".to_string(), |st| {
                        if st.running.is_some() {
                            format!("running {:?}", c.container_id)
                        } else if let Some(w) = &st.waiting {
                            format!("waiting {:?}", w.reason)
                        } else if let Some(t) = &st.terminated {
                            format!("terminated {}", t.exit_code)
                        } else {
                            "none".to_string()
                        }
                    });
                    format!(
                        "{} ready={} restarts={} {state}",
                        c.name, c.ready, c.restart_count
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (s.phase.clone(), conditions, containers)
}

/// Probes every running container of `pods` once, concurrently; keyed by
/// (config hash, container name).
async fn probe_all<'d>(pods: impl Iterator<Item = &'d Desired>) -> HashMap<(String, String), bool> {
    let mut out = HashMap::new();
    let mut pending = Vec::new();
    for d in pods {
        for r in &d.static_pod.containers {
            let key = (d.hash.clone(), r.name.clone());
            if r.pid.is_none() {
                out.insert(key, false);
                continue;
            }
            match r.probe.clone() {
                Some(p) => pending.push((
                    key,
                    tokio::task::spawn_blocking(move || {
                        crate::probe::http_get(&p, PROBE_TIMEOUT).is_ok_and(|r| r.success())
                    }),
                )),
                None => {
                    out.insert(key, r.up_for.is_some_and(|u| u >= Duration::from_secs(1)));
                }
            }
        }
    }
    for (key, handle) in pending {
        out.insert(key, handle.await.unwrap_or(false));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEDULER: &str = "apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  annotations:
    example.com/a: b
  labels:
    component: kube-scheduler
    tier: control-plane
  name: kube-scheduler
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-scheduler
    - --leader-elect=true
    image: registry.k8s.io/kube-scheduler:v1.35.4
    name: kube-scheduler
    resources:
      requests:
        cpu: 100m
    readinessProbe:
      httpGet:
        host: 127.0.0.1
        path: /readyz
        port: probe-port
        scheme: HTTPS
  hostNetwork: true
  priority: 2000001000
  priorityClassName: system-node-critical
status: {}
";

    fn static_pod(content: &str) -> StaticPod {
        StaticPod {
            source: "/etc/kubernetes/manifests/kube-scheduler.yaml".into(),
            content: content.as_bytes().to_vec(),
            containers: vec![ContainerRun {
                name: "kube-scheduler".into(),
                phase: Phase::Running,
                pid: Some(42),
                started_at: Some(SystemTime::now()),
                up_for: Some(Duration::from_secs(5)),
                starts: 2,
                probe: None,
                last_exit: None,
            }],
        }
    }

    #[test]
    fn fnv1a_128() {
        // The FNV-1a 128 test vector for "a" (node and source empty are
        // still hashed as "host:" and "file:", so check the raw function).
        let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
        h ^= u128::from(b'a');
        h = h.wrapping_mul(0x0000000001000000000000000000013b);
        assert_eq!(format!("{h:032x}"), "d228cb696f1a8caf78912b704e4a8964");
        let a = config_hash(b"x", "n1", "/etc/kubernetes/manifests/a.yaml");
        assert_eq!(a.len(), 32);
        assert_eq!(
            a,
            config_hash(b"x", "n1", "/etc/kubernetes/manifests/a.yaml")
        );
        assert_ne!(
            a,
            config_hash(b"y", "n1", "/etc/kubernetes/manifests/a.yaml")
        );
        assert_ne!(
            a,
            config_hash(b"x", "n2", "/etc/kubernetes/manifests/a.yaml")
        );
        assert_ne!(
            a,
            config_hash(b"x", "n1", "/etc/kubernetes/manifests/b.yaml")
        );
    }

    #[test]
    fn the_mirror_pod_of_a_manifest() {
        let d = desired_mirror_pod(&static_pod(SCHEDULER), "KF-Node").unwrap();
        assert_eq!(d.name, "kube-scheduler-kf-node");
        assert_eq!(d.namespace, "kube-system");
        let meta = &d.pod.metadata;
        let ann = meta.annotations.as_ref().unwrap();
        assert_eq!(ann["example.com/a"], "b");
        assert_eq!(ann[CONFIG_HASH], d.hash);
        assert_eq!(ann[CONFIG_MIRROR], d.hash);
        assert_eq!(ann[CONFIG_SOURCE], "file");
        assert_eq!(meta.labels.as_ref().unwrap()["component"], "kube-scheduler");
        assert!(meta.creation_timestamp.is_none() && meta.uid.is_none());
        let spec = d.pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("KF-Node"));
        assert_eq!(spec.priority, Some(2000001000));
        assert_eq!(
            spec.containers[0].image.as_deref(),
            Some("registry.k8s.io/kube-scheduler:v1.35.4")
        );
        let t = spec.tolerations.as_ref().unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].operator.as_deref(), Some("Exists"));
        assert_eq!(t[0].effect.as_deref(), Some("NoExecute"));
        // Another manifest, another hash.
        let changed = SCHEDULER.replace("--leader-elect=true", "--leader-elect=false");
        assert_ne!(
            desired_mirror_pod(&static_pod(&changed), "KF-Node")
                .unwrap()
                .hash,
            d.hash
        );
        // No namespace: default.
        let no_ns = SCHEDULER.replace("  namespace: kube-system\n", "");
        assert_eq!(
            desired_mirror_pod(&static_pod(&no_ns), "n")
                .unwrap()
                .namespace,
            "default"
        );
    }

    #[test]
    fn seen_is_rfc3339_with_nanoseconds() {
        let t = Timestamp::from_nanosecond(1_700_000_000_123_456_789).unwrap();
        assert_eq!(seen_string(t), "2023-11-14T22:13:20.123456789Z");
    }

    #[test]
    fn container_states() {
        let c = k8s_openapi::api::core::v1::Container {
            name: "x".into(),
            image: Some("img".into()),
            ..Default::default()
        };
        let mut run = static_pod(SCHEDULER).containers.remove(0);
        let s = container_status(&c, Some(&run), true);
        assert!(s.ready && s.started == Some(true));
        assert_eq!(s.restart_count, 1);
        assert!(s.state.as_ref().unwrap().running.is_some());
        run.pid = None;
        run.phase = Phase::BackOff;
        run.last_exit = Some(ExitEvent {
            component: "x".into(),
            pid: 42,
            code: Some(1),
            signal: None,
            at: SystemTime::now(),
            ran_for: Duration::from_secs(3),
        });
        let s = container_status(&c, Some(&run), true);
        assert!(!s.ready);
        let w = s.state.as_ref().unwrap().waiting.as_ref().unwrap();
        assert_eq!(w.reason.as_deref(), Some("CrashLoopBackOff"));
        let last = s.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.exit_code, 1);
        let s = container_status(&c, None, false);
        assert_eq!(
            s.state.unwrap().waiting.unwrap().reason.as_deref(),
            Some("ContainerCreating")
        );
    }
}
