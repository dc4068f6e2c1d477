//! The kubelet as kubeadm sets it up: the cluster's KubeletConfiguration (kubeadm's defaults
//! with the user's `KubeletConfiguration` document laid over them), where the kubelet keeps
//! its files, and stopping and starting its service the way kubeadm's `TryStopKubelet`,
//! `TryStartKubelet` and `TryRestartKubelet` do: warn and go on when that is not possible.
//!
//! kubeadm v1.35: `cmd/kubeadm/app/componentconfigs/kubelet.go` (`Default`),
//! `kubelet_unix.go` (`Mutate`), `phases/kubelet/kubelet.go` (the service).

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::dns_service_ip;
use kubeforge_api::release::Release;
use serde_json::{Value, json};

use crate::bindings::kubeforge::phase::node::{self, ServiceAction};
use crate::component_config::merge;
use crate::staticpod::{MANIFESTS_DIR, join_path};
use crate::{PhaseError, Result, info, warn};

/// The logical fs root the host maps to the kubelet's directory.
pub const KUBELET_ROOT: &str = "kubelet";
/// The kubelet's directory on the node (kubeadm's `KubeletRunDirectory`).
pub const KUBELET_DIR: &str = "/var/lib/kubelet";
/// The kubelet's configuration file in [`KUBELET_DIR`].
pub const CONFIG_FILE: &str = "config.yaml";
/// The per-node patch kubeadm lays over [`CONFIG_FILE`] (`NodeLocalCRISocket`).
pub const INSTANCE_CONFIG_FILE: &str = "instance-config.yaml";
/// The environment file with the kubelet's flags in [`KUBELET_DIR`].
pub const FLAGS_FILE: &str = "kubeadm-flags.env";
/// The kubelet's service on the node.
pub const SERVICE: &str = "kubelet";

/// kubeadm's `kubeletHealthzBindAddress` and `KubeletHealthzPort`.
pub const HEALTHZ_BIND_ADDRESS: &str = "127.0.0.1";
pub const HEALTHZ_PORT: i64 = 10248;

/// The resolver configuration kubeadm gives the kubelet when systemd-resolved is active.
pub const SYSTEMD_RESOLV_CONF: &str = "/run/systemd/resolve/resolv.conf";

const KIND: &str = "KubeletConfiguration";

/// The phase-context output kubelet-start leaves when it set `resolvConf` for systemd-resolved
/// in a cluster configuration that had none: up to v1.36 kubeadm set it on the cluster-wide
/// configuration itself, so the `kubelet-config` ConfigMap uploaded later in the same run
/// carries it too (v1.37 sets it on a copy).
pub const RESOLV_CONF_OUTPUT: &str = "kubelet-resolv-conf";

/// Whether the CRI socket goes to the node's `instance-config.yaml` (laid over `config.yaml`)
/// instead of a `--container-runtime-endpoint` flag: kubeadm's `NodeLocalCRISocket` feature
/// gate, on by default in v1.35 (beta) and v1.36 (GA, but kubeadm still honours `false`),
/// removed in v1.37, which always does it.
pub fn node_local_cri_socket(config: &EffectiveConfig) -> bool {
    Release::of_version(config.kubernetes_version()).minor >= 37
        || config.cluster.feature_gates.get("NodeLocalCRISocket") != Some(&false)
}

/// The cluster's KubeletConfiguration as kubeadm marshals it into the `kubelet-config`
/// ConfigMap: kubeadm's defaults for this cluster with the user's `KubeletConfiguration`
/// document (if any) laid over them. The user's values win, except `rotateCertificates`,
/// which kubeadm always sets.
pub fn configuration(config: &EffectiveConfig) -> Result<Value, String> {
    let dns = dns_service_ip(config.service_subnet()).map_err(|e| {
        format!("networking.serviceSubnet: no DNS service address (its tenth address): {e}")
    })?;
    let mut kubelet = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"cacheTTL": "0s", "enabled": true},
            "x509": {"clientCAFile": client_ca_file(config)},
        },
        "authorization": {
            "mode": "Webhook",
            "webhook": {"cacheAuthorizedTTL": "0s", "cacheUnauthorizedTTL": "0s"},
        },
        "cgroupDriver": "systemd",
        "clusterDNS": [dns.to_string()],
        "clusterDomain": config.dns_domain(),
        "containerRuntimeEndpoint": "",
        "cpuManagerReconcilePeriod": "0s",
        "crashLoopBackOff": {},
        "evictionPressureTransitionPeriod": "0s",
        "fileCheckFrequency": "0s",
        "healthzBindAddress": HEALTHZ_BIND_ADDRESS,
        "healthzPort": HEALTHZ_PORT,
        "httpCheckFrequency": "0s",
        "imageMaximumGCAge": "0s",
        "imageMinimumGCAge": "0s",
        "kind": KIND,
        "logging": {
            "flushFrequency": 0,
            "options": {"json": {"infoBufferSize": "0"}, "text": {"infoBufferSize": "0"}},
            "verbosity": 0,
        },
        "memorySwap": {},
        "nodeStatusReportFrequency": "0s",
        "nodeStatusUpdateFrequency": "0s",
        "rotateCertificates": true,
        "runtimeRequestTimeout": "0s",
        "shutdownGracePeriod": "0s",
        "shutdownGracePeriodCriticalPods": "0s",
        "staticPodPath": MANIFESTS_DIR,
        "streamingConnectionIdleTimeout": "0s",
        "syncFrequency": "0s",
        "volumeStatsAggPeriod": "0s",
    });
    if let Some(user) = &config.kubelet {
        let defaults = kubelet.clone();
        merge(&mut kubelet, user);
        // kubeadm defaults these when they are empty, whatever the user wrote.
        for path in DEFAULTED_WHEN_EMPTY {
            if pointer_is_empty_string(&kubelet, path) {
                set_pointer(&mut kubelet, path, defaults.pointer(path).cloned());
            }
        }
        // "We cannot show a warning for RotateCertificates==false and we must hardcode it."
        kubelet["rotateCertificates"] = json!(true);
    }
    Ok(kubelet)
}

/// `certificatesDir/ca.crt`: the CA the kubelet checks clients against.
fn client_ca_file(config: &EffectiveConfig) -> String {
    join_path(config.certificates_dir(), "ca.crt")
}

/// Fields kubeadm's `Default` fills when they are empty strings.
const DEFAULTED_WHEN_EMPTY: &[&str] = &[
    "/staticPodPath",
    "/clusterDomain",
    "/authentication/x509/clientCAFile",
    "/authorization/mode",
    "/healthzBindAddress",
    "/cgroupDriver",
];

fn pointer_is_empty_string(value: &Value, path: &str) -> bool {
    value.pointer(path).is_some_and(|v| v.as_str() == Some(""))
}

fn set_pointer(value: &mut Value, path: &str, new: Option<Value>) {
    if let (Some(slot), Some(new)) = (value.pointer_mut(path), new) {
        *slot = new;
    }
}

/// kubeadm's warnings for a user's KubeletConfiguration that sets a value other than the one
/// kubeadm recommends (`warnDefaultComponentConfigValue`), in kubeadm's order.
pub fn recommended_value_warnings(config: &EffectiveConfig) -> Vec<String> {
    let Some(user) = &config.kubelet else {
        return vec![];
    };
    let mut warnings = Vec::new();
    let mut check =
        |field: &str, path: &str, recommended: Value, differs: &dyn Fn(&Value) -> bool| {
            if let Some(given) = user.pointer(path).filter(|v| !v.is_null())
                && differs(given)
            {
                warnings.push(format!(
                "The recommended value for {field:?} in {KIND:?} is: {}; the provided value is: {}",
                go_value(&recommended),
                go_value(given)
            ));
            }
        };
    let not_empty_and_not = |recommended: Value| {
        move |given: &Value| given.as_str() != Some("") && *given != recommended
    };
    check(
        "staticPodPath",
        "/staticPodPath",
        json!(MANIFESTS_DIR),
        &not_empty_and_not(json!(MANIFESTS_DIR)),
    );
    if let Ok(dns) = dns_service_ip(config.service_subnet()) {
        let recommended = json!([dns.to_string()]);
        check("clusterDNS", "/clusterDNS", recommended.clone(), &|given| {
            *given != recommended
        });
    }
    if !config.dns_domain().is_empty() {
        check(
            "clusterDomain",
            "/clusterDomain",
            json!(config.dns_domain()),
            &not_empty_and_not(json!(config.dns_domain())),
        );
    }
    let ca_file = json!(client_ca_file(config));
    check(
        "authentication.x509.clientCAFile",
        "/authentication/x509/clientCAFile",
        ca_file.clone(),
        &not_empty_and_not(ca_file),
    );
    check(
        "authentication.anonymous.enabled",
        "/authentication/anonymous/enabled",
        json!(false),
        &|given| *given == json!(true),
    );
    check(
        "authorization.mode",
        "/authorization/mode",
        json!("Webhook"),
        &not_empty_and_not(json!("Webhook")),
    );
    check(
        "authentication.webhook.enabled",
        "/authentication/webhook/enabled",
        json!(true),
        &|given| *given == json!(false),
    );
    check(
        "healthzBindAddress",
        "/healthzBindAddress",
        json!(HEALTHZ_BIND_ADDRESS),
        &not_empty_and_not(json!(HEALTHZ_BIND_ADDRESS)),
    );
    check(
        "healthzPort",
        "/healthzPort",
        json!(HEALTHZ_PORT),
        &|given| *given != json!(HEALTHZ_PORT),
    );
    check("readOnlyPort", "/readOnlyPort", json!(0), &|given| {
        *given != json!(0)
    });
    warnings
}

/// A JSON value as Go's `%v` prints the Go value it decodes to: `[a b]` for a list.
fn go_value(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_value).collect::<Vec<_>>().join(" ")
        ),
        other => other.to_string(),
    }
}

/// The kubelet's healthz endpoint from its configuration: `healthzBindAddress` and
/// `healthzPort` (kubeadm's defaults when unset).
pub fn healthz(kubelet: &Value) -> (String, i64) {
    (
        kubelet["healthzBindAddress"]
            .as_str()
            .filter(|address| !address.is_empty())
            .unwrap_or(HEALTHZ_BIND_ADDRESS)
            .to_owned(),
        kubelet["healthzPort"].as_i64().unwrap_or(HEALTHZ_PORT),
    )
}

/// `text` quoted as Go's `%q` quotes a string (the flags and instance configuration files are
/// written with it).
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                quoted.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", c as u32)),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// What kubeadm does with the kubelet's service, and what it says when it cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceStep {
    /// `TryStopKubelet`, before kubelet-start writes the kubelet's files.
    Stop,
    /// `TryStartKubelet` (a restart), after kubelet-start wrote them.
    Start,
    /// `TryRestartKubelet`, after kubelet-finalize pointed kubelet.conf at the rotating
    /// certificate.
    Restart,
}

impl ServiceStep {
    fn action(self) -> ServiceAction {
        match self {
            ServiceStep::Stop => ServiceAction::Stop,
            ServiceStep::Start | ServiceStep::Restart => ServiceAction::Restart,
        }
    }

    /// kubeadm's line when there is no init system to drive.
    pub fn no_init_system_message(self) -> &'static str {
        match self {
            ServiceStep::Start => {
                "[kubelet-start] No supported init system detected, won't make sure the kubelet is running properly."
            }
            ServiceStep::Stop | ServiceStep::Restart => {
                "[kubelet-start] No supported init system detected, won't make sure the kubelet not running for a short period of time while setting up configuration for it."
            }
        }
    }

    /// kubeadm's lines when the init system failed to do it.
    pub fn failure_messages(self, why: &str) -> Vec<String> {
        match self {
            ServiceStep::Stop => vec![format!(
                "[kubelet-start] WARNING: unable to stop the kubelet service momentarily: [{why}]"
            )],
            ServiceStep::Start => vec![
                format!("[kubelet-start] WARNING: unable to start the kubelet service: [{why}]"),
                "[kubelet-start] Please ensure kubelet is reloaded and running manually.".into(),
            ],
            ServiceStep::Restart => vec![format!(
                "[kubelet-start] WARNING: unable to restart the kubelet service momentarily: [{why}]"
            )],
        }
    }
}

/// Stop, start or restart the kubelet's service as kubeadm does: when the node has no init
/// system or the action fails, warn and go on. Only a denial (the phase's grant does not name
/// the service) is an error.
pub fn control_service(step: ServiceStep) -> Result<()> {
    match node::control_service(SERVICE, step.action()) {
        Ok(true) => {}
        Ok(false) => info(step.no_init_system_message()),
        Err(denied @ PhaseError::Denied(_)) => return Err(denied),
        Err(PhaseError::Failed(why) | PhaseError::Conflict(why)) => {
            step.failure_messages(&why).iter().for_each(warn)
        }
        Err(PhaseError::InvalidConfig(field)) => step
            .failure_messages(&format!("{}: {}", field.field, field.reason))
            .iter()
            .for_each(warn),
    }
    Ok(())
}

#[cfg(test)]
mod tests;
