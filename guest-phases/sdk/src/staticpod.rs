//! The pieces every kubeadm static Pod manifest is built from (kubeadm's
//! `util/staticpod`, `util/arguments.go` and `util/env.go`): the Pod skeleton, HTTP probes,
//! hostPath volumes, command-line arguments and environment variables.
//!
//! Objects are built as JSON values with the field names and omissions of `k8s.io/api`'s Go
//! types, so that [`crate::yaml::to_string`] renders them exactly as kubeadm's files.

use std::collections::BTreeMap;

use kubeforge_api::v1beta4::{Arg, EnvVar};
use kubeforge_api::{Duration, EffectiveConfig};
use serde_json::{Map, Value, json};

use crate::{FieldError, PhaseError};

/// The logical fs root that holds static Pod manifests.
pub const MANIFESTS_ROOT: &str = "manifests";

/// Where the kubelet reads static Pod manifests; kubeadm names this folder in its output.
pub const MANIFESTS_DIR: &str = "/etc/kubernetes/manifests";

/// Permission bits of the manifests directory and files, as kubeadm creates them.
const MANIFESTS_DIR_MODE: u32 = 0o700;
const MANIFEST_MODE: u32 = 0o600;

/// The named container port every probe refers to.
const PROBE_PORT: &str = "probe-port";

/// kubeadm's default `timeouts.controlPlaneComponentHealthCheck`.
const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_mins(4);

/// Refuses kubeadm's `RootlessControlPlane` feature gate: kubeadm then runs the static Pods
/// as dedicated users it creates on the node and hands them the files they read, which a
/// phase cannot arrange.
pub fn refuse_rootless_control_plane(config: &EffectiveConfig) -> Result<(), PhaseError> {
    if config.cluster.feature_gates.get("RootlessControlPlane") == Some(&true) {
        return Err(PhaseError::InvalidConfig(FieldError {
            field: "featureGates.RootlessControlPlane".into(),
            reason: "running the control plane as non-root users is not supported".into(),
        }));
    }
    Ok(())
}

/// Writes `<component>.yaml` to the manifests directory as kubeadm does: the directory
/// created 0700 if it is missing, the file 0600.
pub fn write_manifest(component: &str, yaml: &str) -> Result<(), PhaseError> {
    crate::fs::create_dir(MANIFESTS_ROOT, "", MANIFESTS_DIR_MODE)?;
    crate::write_text(
        MANIFESTS_ROOT,
        &format!("{component}.yaml"),
        yaml,
        MANIFEST_MODE,
    )
}

/// `dir` and `file` joined and cleaned as Go's `filepath.Join` does (`/etc/k8s//pki/` and
/// `ca.crt` give `/etc/k8s/pki/ca.crt`), which is how kubeadm builds the paths in flags.
pub fn join_path(dir: &str, file: &str) -> String {
    let joined = match (dir.is_empty(), file.is_empty()) {
        (true, true) => return String::new(),
        (true, false) => file.to_owned(),
        (false, true) => dir.to_owned(),
        (false, false) => format!("{dir}/{file}"),
    };
    clean_path(&joined)
}

/// Go's `path.Clean`: the shortest equivalent path, without `.`, `..` where resolvable, or
/// repeated and trailing slashes.
fn clean_path(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

/// The value of the last `name` argument, as kubeadm's `GetArgValue(args, name, -1)`.
pub fn arg_value<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .rev()
        .find(|arg| arg.name == name)
        .map(|arg| arg.value.as_str())
}

/// Sets the last `name` argument to `value`, or appends it, as kubeadm's
/// `SetArgValues(args, name, value, 1)`.
pub fn set_arg(args: &mut Vec<Arg>, name: &str, value: impl Into<String>) {
    let value = value.into();
    match args.iter_mut().rev().find(|arg| arg.name == name) {
        Some(arg) => arg.value = value,
        None => args.push(Arg {
            name: name.into(),
            value,
        }),
    }
}

/// `--name=value` flags as kubeadm's `ArgumentsToCommand`: the defaults sorted by name (then
/// value), minus every default the user also sets, followed by the user's arguments in the
/// user's order (so a user flag may repeat and always wins).
pub fn arguments_to_command(mut defaults: Vec<Arg>, overrides: &[Arg]) -> Vec<String> {
    defaults.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.value.cmp(&b.value)));
    defaults
        .iter()
        .filter(|arg| !overrides.iter().any(|o| o.name == arg.name))
        .chain(overrides)
        .map(|arg| format!("--{}={}", arg.name, arg.value))
        .collect()
}

/// A container command: the binary followed by [`arguments_to_command`].
pub fn command(binary: &str, defaults: Vec<Arg>, overrides: &[Arg]) -> Vec<String> {
    std::iter::once(binary.to_owned())
        .chain(arguments_to_command(defaults, overrides))
        .collect()
}

/// Environment variables merged as kubeadm's `MergeKubeadmEnvVars`: a later list overrides an
/// earlier one's variable of the same name; the result is sorted by name.
pub fn merge_env_vars(lists: &[&[EnvVar]]) -> Vec<Value> {
    let mut merged: BTreeMap<&str, &EnvVar> = BTreeMap::new();
    for env in lists.iter().copied().flatten() {
        merged.insert(&env.name, env);
    }
    merged
        .values()
        .map(|env| {
            let mut var = Map::new();
            var.insert("name".into(), env.name.clone().into());
            if !env.value.is_empty() {
                var.insert("value".into(), env.value.clone().into());
            }
            Value::Object(var)
        })
        .collect()
}

/// The proxy settings of an environment (`NAME=value` pairs) that kubeadm passes on to the
/// control-plane containers: variables whose name ends in `_proxy` (any case), if non-empty.
pub fn proxy_env_vars(environment: impl IntoIterator<Item = (String, String)>) -> Vec<EnvVar> {
    environment
        .into_iter()
        .filter(|(name, value)| name.to_lowercase().ends_with("_proxy") && !value.is_empty())
        .map(|(name, value)| EnvVar { name, value })
        .collect()
}

/// The URL scheme of an HTTP probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "HTTP",
            Scheme::Https => "HTTPS",
        }
    }
}

/// Where a probe connects: host (empty means the Pod IP), path and scheme; the port is always
/// the container's `probe-port`.
#[derive(Debug, Clone, Copy)]
pub struct ProbeTarget<'a> {
    pub host: &'a str,
    pub path: &'a str,
    pub scheme: Scheme,
}

/// kubeadm's liveness probe: first check after 10s, every 10s, 8 failures allowed.
pub fn liveness_probe(target: ProbeTarget) -> Value {
    http_probe(target, 10, 8, 10)
}

/// kubeadm's readiness probe: checked every second from the start, 3 failures allowed.
pub fn readiness_probe(target: ProbeTarget) -> Value {
    http_probe(target, 0, 3, 1)
}

/// kubeadm's startup probe: every 10s, with enough failures allowed to cover the
/// control-plane health-check timeout (`None` means kubeadm's default of 4 minutes).
pub fn startup_probe(target: ProbeTarget, health_check_timeout: Option<Duration>) -> Value {
    const PERIOD_SECONDS: i64 = 10;
    let timeout_nanos = health_check_timeout
        .unwrap_or(DEFAULT_HEALTH_CHECK_TIMEOUT)
        .as_nanos();
    let period_nanos = PERIOD_SECONDS * 1_000_000_000;
    // ceil(timeout / period), as kubeadm computes it in float seconds.
    let failure_threshold = (timeout_nanos + period_nanos - 1).div_euclid(period_nanos);
    http_probe(target, PERIOD_SECONDS, failure_threshold, PERIOD_SECONDS)
}

fn http_probe(
    target: ProbeTarget,
    initial_delay_seconds: i64,
    failure_threshold: i64,
    period_seconds: i64,
) -> Value {
    let mut http_get = Map::new();
    if !target.host.is_empty() {
        http_get.insert("host".into(), target.host.into());
    }
    http_get.insert("path".into(), target.path.into());
    http_get.insert("port".into(), PROBE_PORT.into());
    http_get.insert("scheme".into(), target.scheme.as_str().into());
    let mut probe = Map::new();
    probe.insert("httpGet".into(), Value::Object(http_get));
    // Go omits zero integers from a Probe.
    for (field, seconds) in [
        ("initialDelaySeconds", initial_delay_seconds),
        ("timeoutSeconds", 15),
        ("periodSeconds", period_seconds),
        ("failureThreshold", failure_threshold),
    ] {
        if seconds != 0 {
            probe.insert(field.into(), seconds.into());
        }
    }
    Value::Object(probe)
}

/// The probe host for a component bound to `address`: empty for the unspecified addresses
/// (`0.0.0.0`, `::`), which a probe cannot connect to, so the kubelet uses the Pod IP.
pub fn probe_address(address: &str) -> &str {
    if address == "0.0.0.0" || address == "::" {
        ""
    } else {
        address
    }
}

/// The container's `probe-port` declaration.
pub fn probe_port(port: i64) -> Value {
    json!([{"containerPort": port, "name": PROBE_PORT, "protocol": "TCP"}])
}

/// A CPU request, as every control-plane container has.
pub fn cpu_request(cpu: &str) -> Value {
    json!({"requests": {"cpu": cpu}})
}

/// A hostPath volume. `path_type` `None` leaves the type out; `Some("")` writes `type: ""`,
/// as kubeadm does for a user's extra volume without `pathType`.
pub fn host_path_volume(name: &str, path: &str, path_type: Option<&str>) -> Value {
    let mut host_path = Map::new();
    host_path.insert("path".into(), path.into());
    if let Some(path_type) = path_type {
        host_path.insert("type".into(), path_type.into());
    }
    json!({"hostPath": host_path, "name": name})
}

/// A volume mount; Go omits `readOnly: false`.
pub fn volume_mount(name: &str, mount_path: &str, read_only: bool) -> Value {
    let mut mount = Map::new();
    mount.insert("mountPath".into(), mount_path.into());
    mount.insert("name".into(), name.into());
    if read_only {
        mount.insert("readOnly".into(), true.into());
    }
    Value::Object(mount)
}

/// A component's hostPath volumes and their mounts, unique by name (a later one with the same
/// name replaces the earlier one, so a user's extra volume can replace a default) and listed
/// sorted by name.
#[derive(Debug, Clone, Default)]
pub struct HostPathMounts {
    volumes: BTreeMap<String, Value>,
    mounts: BTreeMap<String, Value>,
}

impl HostPathMounts {
    pub fn add(
        &mut self,
        name: &str,
        host_path: &str,
        mount_path: &str,
        read_only: bool,
        path_type: Option<&str>,
    ) {
        self.volumes
            .insert(name.into(), host_path_volume(name, host_path, path_type));
        self.mounts
            .insert(name.into(), volume_mount(name, mount_path, read_only));
    }

    pub fn volumes(&self) -> Vec<Value> {
        self.volumes.values().cloned().collect()
    }

    pub fn volume_mounts(&self) -> Vec<Value> {
        self.mounts.values().cloned().collect()
    }
}

/// A control-plane static Pod around `container` (kubeadm's `ComponentPod`): in
/// `kube-system`, labelled `component=<name>` and `tier=control-plane`, on the host network,
/// with priority class `system-node-critical` and the runtime's default seccomp profile.
/// `volumes` are expected in kubeadm's order (sorted by name).
pub fn component_pod(
    container: Value,
    volumes: Vec<Value>,
    annotations: &[(&str, String)],
) -> Value {
    let name = container["name"].clone();
    let mut metadata = json!({
        "labels": {"component": name, "tier": "control-plane"},
        "name": name,
        "namespace": "kube-system",
    });
    if !annotations.is_empty() {
        let annotations: Map<String, Value> = annotations
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::from(value.as_str())))
            .collect();
        metadata["annotations"] = Value::Object(annotations);
    }
    let mut spec = json!({
        "containers": [container],
        "hostNetwork": true,
        "priority": 2000001000,
        "priorityClassName": "system-node-critical",
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    });
    if !volumes.is_empty() {
        spec["volumes"] = Value::Array(volumes);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata,
        "spec": spec,
        "status": {},
    })
}

/// An object without its empty lists (a container without `env`, say), as Go's `omitempty`
/// leaves them out.
pub fn without_empty_lists(mut object: Value) -> Value {
    if let Some(fields) = object.as_object_mut() {
        fields.retain(|_, value| !matches!(value, Value::Array(items) if items.is_empty()));
    }
    object
}

#[cfg(test)]
mod tests;
