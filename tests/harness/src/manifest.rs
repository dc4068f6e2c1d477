//! Static pod manifests: the subset of the core/v1 Pod schema the stand-in
//! needs, and the translation of each container into a host process
//! ([`ContainerPlan`]) with hostPath-mounted paths mapped under the test root.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// A Pod as kubeadm writes it into `/etc/kubernetes/manifests`. Unknown
/// fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Pod {
    pub api_version: String,
    pub kind: String,
    pub metadata: ObjectMeta,
    pub spec: PodSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectMeta {
    pub name: String,
    pub namespace: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PodSpec {
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    pub host_network: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Container {
    pub name: String,
    pub command: Vec<String>,
    pub args: Vec<String>,
    pub env: Vec<EnvVar>,
    pub volume_mounts: Vec<VolumeMount>,
    pub working_dir: Option<String>,
    pub ports: Vec<ContainerPort>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    pub liveness_probe: Option<Probe>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerPort {
    pub name: String,
    pub container_port: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EnvVar {
    pub name: String,
    /// `valueFrom` is not supported (the kubelet resolves it from the API).
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
    pub read_only: bool,
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Volume {
    pub name: String,
    pub host_path: Option<HostPathVolumeSource>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HostPathVolumeSource {
    pub path: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Probe {
    pub http_get: Option<HttpGetAction>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HttpGetAction {
    pub host: Option<String>,
    pub path: Option<String>,
    pub port: Option<IntOrString>,
    pub scheme: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl Pod {
    /// Parses a manifest (YAML or JSON).
    pub fn parse(text: &str) -> Result<Pod> {
        let pod: Pod = serde_saphyr::from_str(text).context("parsing static pod manifest")?;
        if pod.kind != "Pod" {
            bail!("manifest kind is {:?}, expected \"Pod\"", pod.kind);
        }
        if pod.spec.containers.is_empty() {
            bail!("pod {:?} has no containers", pod.metadata.name);
        }
        Ok(pod)
    }
}

/// An HTTP(S) probe resolved to a host endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    pub https: bool,
    pub host: String,
    pub port: u16,
    pub path: String,
}

impl HttpProbe {
    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// How one container of a static pod is run on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPlan {
    /// Component name: the container name (kubeadm: `kube-apiserver`, `etcd`, ...).
    pub component: String,
    /// The manifest file this container came from.
    pub manifest: PathBuf,
    /// Executable: `command[0]` resolved against the testenv bin dir.
    pub program: PathBuf,
    /// `command[1..]` followed by `args`, with mounted paths mapped under the root.
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: PathBuf,
    /// Readiness probe (readiness, else startup, else liveness probe of the container).
    pub probe: Option<HttpProbe>,
    /// hostPath directories (`DirectoryOrCreate`) to create before starting.
    pub create_dirs: Vec<PathBuf>,
    /// hostPath files (`FileOrCreate`) to create (empty) before starting.
    pub create_files: Vec<PathBuf>,
    /// Absolute paths in the arguments that are not under any hostPath mount
    /// and were therefore passed through unchanged.
    pub unmapped: Vec<String>,
}

/// Maps container paths to host paths: mountPath -> root + hostPath, longest
/// mountPath prefix (at a path component boundary) wins. A hostPath that is
/// already under the root is used as is.
#[derive(Debug, Clone, Default)]
pub struct PathMapper {
    /// (mountPath, host path), sorted by descending mountPath length.
    mounts: Vec<(PathBuf, PathBuf)>,
}

/// Lexically normalises an absolute path (`.` and `..` removed).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(s) => out.push(s),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// `root` + absolute `host_path`, unless `host_path` is already under `root`.
pub fn host_path_under(root: &Path, host_path: &str) -> PathBuf {
    let hp = normalize(Path::new(host_path));
    if hp.starts_with(root) {
        return hp;
    }
    root.join(hp.strip_prefix("/").unwrap_or(&hp))
}

impl PathMapper {
    pub fn new(root: &Path, mounts: impl IntoIterator<Item = (String, String)>) -> PathMapper {
        let mut mounts: Vec<(PathBuf, PathBuf)> = mounts
            .into_iter()
            .map(|(mount_path, host_path)| {
                (
                    normalize(Path::new(&mount_path)),
                    host_path_under(root, &host_path),
                )
            })
            .collect();
        mounts.sort_by_key(|(m, _)| std::cmp::Reverse(m.as_os_str().len()));
        PathMapper { mounts }
    }

    /// Maps an absolute container path; `None` when no mount covers it.
    pub fn map(&self, path: &str) -> Option<PathBuf> {
        if !path.starts_with('/') {
            return None;
        }
        let p = normalize(Path::new(path));
        self.mounts.iter().find_map(|(mount, host)| {
            p.strip_prefix(mount).ok().map(|rest| {
                if rest.as_os_str().is_empty() {
                    host.clone()
                } else {
                    host.join(rest)
                }
            })
        })
    }

    /// Maps one command-line argument: `--flag=/path`, `--flag=/a,/b` or a
    /// bare `/path`. Returns the mapped argument and the absolute paths that
    /// no mount covered.
    pub fn map_arg(&self, arg: &str) -> (String, Vec<String>) {
        let (prefix, value) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with('-') => (format!("{flag}="), value),
            _ if arg.starts_with('/') => (String::new(), arg),
            _ => return (arg.to_string(), Vec::new()),
        };
        if !value.starts_with('/') {
            return (arg.to_string(), Vec::new());
        }
        let mut unmapped = Vec::new();
        let parts: Vec<String> = value
            .split(',')
            .map(|part| {
                if !part.starts_with('/') {
                    return part.to_string();
                }
                match self.map(part) {
                    Some(mapped) => mapped.to_string_lossy().into_owned(),
                    None => {
                        unmapped.push(part.to_string());
                        part.to_string()
                    }
                }
            })
            .collect();
        (format!("{prefix}{}", parts.join(",")), unmapped)
    }
}

/// A probe port: a number, or the name of one of the container's ports
/// (kubeadm 1.35 uses `port: probe-port` with `ports: [{name: probe-port,
/// containerPort: 10257}]`).
fn resolve_port(port: &Option<IntOrString>, ports: &[ContainerPort]) -> Result<u16> {
    let n = match port {
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => match s.parse::<i64>() {
            Ok(n) => n,
            Err(_) => ports
                .iter()
                .find(|p| p.name == *s)
                .map(|p| p.container_port)
                .with_context(|| format!("probe port {s:?} names no container port"))?,
        },
        None => bail!("probe has no port"),
    };
    u16::try_from(n).with_context(|| format!("probe port {n}"))
}

fn resolve_probe(c: &Container) -> Result<Option<HttpProbe>> {
    let probe = [&c.readiness_probe, &c.startup_probe, &c.liveness_probe]
        .into_iter()
        .flatten()
        .find_map(|p| p.http_get.as_ref());
    let Some(get) = probe else { return Ok(None) };
    let host = match get.host.as_deref() {
        // hostNetwork pods: the pod IP is the node's; loopback reaches it.
        None | Some("") => "127.0.0.1".to_string(),
        Some(h) => h.to_string(),
    };
    let https = match get.scheme.as_deref() {
        None | Some("") | Some("HTTP") | Some("http") => false,
        Some("HTTPS") | Some("https") => true,
        Some(other) => bail!("unsupported probe scheme {other:?}"),
    };
    let mut path = get.path.clone().unwrap_or_default();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(Some(HttpProbe {
        https,
        host,
        port: resolve_port(&get.port, &c.ports)?,
        path,
    }))
}

/// Resolves `command[0]` against the testenv bin dir: its basename names a
/// component (`kube-apiserver`, `etcd`, ...) there. Falls back to the path
/// itself when it is an existing absolute path.
pub fn resolve_program(bin_dir: &Path, command0: &str) -> Result<PathBuf> {
    let base = Path::new(command0)
        .file_name()
        .with_context(|| format!("command[0] {command0:?} has no file name"))?;
    let candidate = bin_dir.join(base);
    if candidate.exists() {
        return Ok(candidate);
    }
    let p = Path::new(command0);
    if p.is_absolute() && p.exists() {
        return Ok(p.to_path_buf());
    }
    bail!(
        "command {command0:?}: no {:?} in the testenv bin dir {}",
        base,
        bin_dir.display()
    )
}

/// Translates every container of `pod` into a host process plan.
pub fn plan_pod(
    pod: &Pod,
    manifest: &Path,
    root: &Path,
    bin_dir: &Path,
) -> Result<Vec<ContainerPlan>> {
    let volumes: BTreeMap<&str, &HostPathVolumeSource> = pod
        .spec
        .volumes
        .iter()
        .filter_map(|v| v.host_path.as_ref().map(|hp| (v.name.as_str(), hp)))
        .collect();
    let mut plans = Vec::new();
    for c in &pod.spec.containers {
        let component = if c.name.is_empty() {
            pod.metadata.name.clone()
        } else {
            c.name.clone()
        };
        let what = format!("container {component:?} in {}", manifest.display());
        let ctx = || what.clone();
        let mut mounts = Vec::new();
        let mut create_dirs = Vec::new();
        let mut create_files = Vec::new();
        for m in &c.volume_mounts {
            let Some(hp) = volumes.get(m.name.as_str()) else {
                continue; // not a hostPath volume (emptyDir, projected, ...)
            };
            if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
                bail!(
                    "{}: volumeMount {:?} uses subPath (unsupported)",
                    ctx(),
                    m.name
                );
            }
            let host = host_path_under(root, &hp.path);
            match hp.type_.as_deref() {
                Some("DirectoryOrCreate") => create_dirs.push(host.clone()),
                Some("FileOrCreate") => create_files.push(host.clone()),
                _ => {}
            }
            mounts.push((m.mount_path.clone(), hp.path.clone()));
        }
        let mapper = PathMapper::new(root, mounts);
        let Some(command0) = c.command.first() else {
            bail!("{}: no command (image entrypoints cannot be run)", ctx());
        };
        let program = resolve_program(bin_dir, command0).with_context(ctx)?;
        let mut args = Vec::new();
        let mut unmapped = Vec::new();
        for a in c.command.iter().skip(1).chain(c.args.iter()) {
            let (mapped, mut missed) = mapper.map_arg(a);
            args.push(mapped);
            unmapped.append(&mut missed);
        }
        let env = c
            .env
            .iter()
            .filter_map(|e| e.value.clone().map(|v| (e.name.clone(), v)))
            .collect();
        let working_dir = match c.working_dir.as_deref() {
            Some(wd) if !wd.is_empty() => {
                mapper.map(wd).unwrap_or_else(|| host_path_under(root, wd))
            }
            _ => root.to_path_buf(),
        };
        let probe = resolve_probe(c).with_context(ctx)?;
        plans.push(ContainerPlan {
            component,
            manifest: manifest.to_path_buf(),
            program,
            args,
            env,
            working_dir,
            probe,
            create_dirs,
            create_files,
            unmapped,
        });
    }
    Ok(plans)
}

#[cfg(test)]
mod tests {
    use super::*;

    const APISERVER: &str = r#"
apiVersion: v1
kind: Pod
metadata:
  creationTimestamp: null
  labels:
    component: kube-apiserver
    tier: control-plane
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --advertise-address=127.0.0.1
    - --client-ca-file=/etc/kubernetes/pki/ca.crt
    - --etcd-servers=https://127.0.0.1:2379
    - --tls-cert-file=/etc/kubernetes/pki/apiserver.crt
    - --audit-log-path=/var/log/audit.log
    image: registry.k8s.io/kube-apiserver:v1.35.4
    name: kube-apiserver
    readinessProbe:
      failureThreshold: 3
      httpGet:
        host: 127.0.0.1
        path: /readyz
        port: 6443
        scheme: HTTPS
    resources:
      requests:
        cpu: 250m
    volumeMounts:
    - mountPath: /etc/ssl/certs
      name: ca-certs
      readOnly: true
    - mountPath: /etc/kubernetes/pki
      name: k8s-certs
      readOnly: true
    - mountPath: /etc/kubernetes/pki/etcd
      name: etcd-certs
  hostNetwork: true
  volumes:
  - hostPath:
      path: /etc/ssl/certs
      type: DirectoryOrCreate
    name: ca-certs
  - hostPath:
      path: /etc/kubernetes/pki
      type: DirectoryOrCreate
    name: k8s-certs
  - hostPath:
      path: /srv/other-etcd-pki
      type: Directory
    name: etcd-certs
status: {}
"#;

    fn fake_bin() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("kube-apiserver"), "").unwrap();
        d
    }

    #[test]
    fn maps_mounted_paths_longest_prefix() {
        let bin = fake_bin();
        let root = Path::new("/tmp/root");
        let pod = Pod::parse(APISERVER).unwrap();
        let plans = plan_pod(&pod, Path::new("/m/kube-apiserver.yaml"), root, bin.path()).unwrap();
        assert_eq!(plans.len(), 1);
        let p = &plans[0];
        assert_eq!(p.component, "kube-apiserver");
        assert_eq!(p.program, bin.path().join("kube-apiserver"));
        assert_eq!(
            p.args,
            vec![
                "--advertise-address=127.0.0.1",
                "--client-ca-file=/tmp/root/etc/kubernetes/pki/ca.crt",
                "--etcd-servers=https://127.0.0.1:2379",
                "--tls-cert-file=/tmp/root/etc/kubernetes/pki/apiserver.crt",
                "--audit-log-path=/var/log/audit.log",
            ]
        );
        assert_eq!(p.unmapped, vec!["/var/log/audit.log"]);
        assert_eq!(
            p.create_dirs,
            vec![
                PathBuf::from("/tmp/root/etc/ssl/certs"),
                PathBuf::from("/tmp/root/etc/kubernetes/pki")
            ]
        );
        assert_eq!(
            p.probe.as_ref().unwrap().url(),
            "https://127.0.0.1:6443/readyz"
        );
    }

    #[test]
    fn nested_mount_wins_and_root_prefixed_hostpath_kept() {
        let root = Path::new("/r");
        let m = PathMapper::new(
            root,
            [
                (
                    "/etc/kubernetes/pki".to_string(),
                    "/r/custom/pki".to_string(),
                ),
                (
                    "/etc/kubernetes/pki/etcd".to_string(),
                    "/x/etcd".to_string(),
                ),
                ("/var/lib/etcd".to_string(), "/var/lib/etcd".to_string()),
            ],
        );
        assert_eq!(
            m.map("/etc/kubernetes/pki/ca.crt").unwrap(),
            PathBuf::from("/r/custom/pki/ca.crt")
        );
        assert_eq!(
            m.map("/etc/kubernetes/pki/etcd/ca.crt").unwrap(),
            PathBuf::from("/r/x/etcd/ca.crt")
        );
        assert_eq!(
            m.map("/var/lib/etcd").unwrap(),
            PathBuf::from("/r/var/lib/etcd")
        );
        // component boundary: /etc/kubernetes/pkix is not under /etc/kubernetes/pki
        assert_eq!(m.map("/etc/kubernetes/pkix"), None);
        assert_eq!(
            m.map_arg("--data-dir=/var/lib/etcd").0,
            "--data-dir=/r/var/lib/etcd"
        );
        assert_eq!(m.map_arg("/var/lib/etcd/x").0, "/r/var/lib/etcd/x");
        assert_eq!(
            m.map_arg("--listen-client-urls=https://127.0.0.1:2379").0,
            "--listen-client-urls=https://127.0.0.1:2379"
        );
    }

    #[test]
    fn rejects_non_pods() {
        assert!(Pod::parse("apiVersion: v1\nkind: ConfigMap\n").is_err());
        assert!(Pod::parse("kind: Pod\nspec: {containers: []}\n").is_err());
    }
}
