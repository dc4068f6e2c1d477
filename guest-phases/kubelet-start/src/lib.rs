//! The `kubelet-start` phase (`kubeadm init phase kubelet-start`): stop the kubelet, write its
//! flags (`/var/lib/kubelet/kubeadm-flags.env`), its per-node settings
//! (`/var/lib/kubelet/instance-config.yaml`) and its configuration
//! (`/var/lib/kubelet/config.yaml`), then (re)start it.
//!
//! As kubeadm v1.35 to v1.37 do (`cmd/kubeadm/app/cmd/phases/init/kubelet.go`,
//! `phases/kubelet/flags.go` and `config.go`). kubeadm passes `--hostname-override` only when
//! the node name differs from the machine's hostname; the host gives every phase that hostname
//! as the output [`HOSTNAME_OUTPUT`] (a host that does not is answered by always passing it:
//! the kubelet then registers under the name it would pick by itself).

use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::Arg;
use kubeforge_sdk::kubelet::{self, SYSTEMD_RESOLV_CONF, go_quote, node_local_cri_socket};
use kubeforge_sdk::staticpod::{arg_value, arguments_to_command};
use serde_json::{Value, json};

/// The phase-context output holding the machine's hostname as kubeadm reads it
/// (`nodeutil.GetHostname`: trimmed and lower-cased).
pub const HOSTNAME_OUTPUT: &str = "hostname";

/// kubeadm's `KubeletEnvFileVariableName`.
pub const FLAGS_VARIABLE: &str = "KUBELET_KUBEADM_ARGS";

fn cri_socket(config: &EffectiveConfig) -> &str {
    config
        .init
        .node_registration
        .cri_socket
        .as_deref()
        .unwrap_or_default()
}

/// The kubelet's flags as kubeadm's `WriteKubeletDynamicEnvFile` builds them for `init`:
/// kubeadm's (sorted by name) minus those `kubeletExtraArgs` sets, then `kubeletExtraArgs` in
/// the user's order. `init` never passes `--register-with-taints`: mark-control-plane taints
/// the node. `hostname` is the machine's ([`HOSTNAME_OUTPUT`]; none: unknown).
pub fn kubelet_flags(config: &EffectiveConfig, hostname: Option<&str>) -> Vec<String> {
    let extra_args = &config.init.node_registration.kubelet_extra_args;
    let mut flags = Vec::new();
    let socket = cri_socket(config);
    if !node_local_cri_socket(config) && !socket.is_empty() {
        flags.push(arg("container-runtime-endpoint", socket));
    }
    // kubeadm's GetNodeNameAndHostname: the last `hostname-override` extra argument, else the
    // node name; passed when it is not the hostname.
    let node_name = arg_value(extra_args, "hostname-override").unwrap_or(config.node_name());
    if !node_name.is_empty() && hostname != Some(node_name) {
        flags.push(arg("hostname-override", node_name));
    }
    arguments_to_command(flags, extra_args)
}

fn arg(name: &str, value: &str) -> Arg {
    Arg {
        name: name.into(),
        value: value.into(),
    }
}

/// `/var/lib/kubelet/kubeadm-flags.env`: `KUBELET_KUBEADM_ARGS="<flags>"`, quoted as Go's `%q`.
pub fn flags_file(config: &EffectiveConfig, hostname: Option<&str>) -> String {
    format!(
        "{FLAGS_VARIABLE}={}\n",
        go_quote(&kubelet_flags(config, hostname).join(" "))
    )
}

/// `/var/lib/kubelet/instance-config.yaml`: the node's own kubelet settings, a patch kubeadm
/// lays over `config.yaml`.
pub fn instance_config(config: &EffectiveConfig) -> String {
    format!(
        "containerRuntimeEndpoint: {}\n",
        go_quote(cri_socket(config))
    )
}

/// What kubelet-start writes to `/var/lib/kubelet/config.yaml`, and what it says about it.
#[derive(Debug, PartialEq)]
pub struct ConfigFile {
    pub yaml: String,
    /// kubeadm's warning when the user's `resolvConf` differs from the one it recommends.
    pub warning: Option<String>,
    /// Whether `resolvConf` was set for systemd-resolved ([`kubelet::RESOLV_CONF_OUTPUT`]).
    pub resolv_conf_set: bool,
}

/// `/var/lib/kubelet/config.yaml`: the cluster's KubeletConfiguration (the document
/// upload-config puts in the `kubelet-config` ConfigMap) plus what is this node's own, as
/// kubeadm's `WriteConfigToDisk` adds it: `resolvConf` when systemd-resolved runs (`Mutate`)
/// and the instance configuration's `containerRuntimeEndpoint`.
pub fn config_file(config: &EffectiveConfig, systemd_resolved: bool) -> Result<ConfigFile, String> {
    let mut kubelet = kubelet::configuration(config)?;
    let mut warning = None;
    let mut resolv_conf_set = false;
    if systemd_resolved {
        match kubelet.get("resolvConf").and_then(Value::as_str) {
            None => {
                kubelet["resolvConf"] = json!(SYSTEMD_RESOLV_CONF);
                resolv_conf_set = true;
            }
            Some(given) if given != SYSTEMD_RESOLV_CONF => {
                warning = Some(format!(
                    "The recommended value for \"resolvConf\" in \"KubeletConfiguration\" is: {SYSTEMD_RESOLV_CONF}; the provided value is: {given}"
                ));
            }
            Some(_) => {}
        }
    }
    if node_local_cri_socket(config) {
        kubelet["containerRuntimeEndpoint"] = json!(cri_socket(config));
    }
    Ok(ConfigFile {
        yaml: kubeforge_api::yaml::to_string(&kubelet),
        warning,
        resolv_conf_set,
    })
}

/// kubeadm's line for the instance configuration it lays over `config.yaml` as a strategic
/// merge patch.
pub const INSTANCE_PATCH_LINE: &str = "[patches] Applied patch of type \"application/strategic-merge-patch+json\" to target \"kubeletconfiguration\"";

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::kubelet::{
        CONFIG_FILE, FLAGS_FILE, INSTANCE_CONFIG_FILE, KUBELET_DIR, KUBELET_ROOT,
        RESOLV_CONF_OUTPUT, SERVICE, SYSTEMD_RESOLV_CONF, ServiceStep, control_service,
        node_local_cri_socket, recommended_value_warnings,
    };
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, info,
        node, requests, warn, write_text,
    };

    /// kubeadm writes the kubelet's files 0644 into a directory it creates 0700.
    const DIR_MODE: u32 = 0o700;
    const FILE_MODE: u32 = 0o644;

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "kubelet-start".into(),
                description: "Write kubelet settings and (re)start the kubelet".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    fs: vec![requests::read_write(KUBELET_ROOT)],
                    // Whether systemd-resolved runs: its resolv.conf then goes to the kubelet.
                    node_paths: requests::names(&[SYSTEMD_RESOLV_CONF]),
                    node_services: requests::names(&[SERVICE]),
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase("kubelet-start", sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            for warning in recommended_value_warnings(&config) {
                warn(warning);
            }
            // kubeadm stops the kubelet so that it does not race the files being written; in
            // a dry run the host records the service actions instead.
            control_service(ServiceStep::Stop)?;
            kubeforge_sdk::fs::create_dir(KUBELET_ROOT, "", DIR_MODE)?;

            info(format!(
                "[kubelet-start] Writing kubelet environment file with flags to file \"{KUBELET_DIR}/{FLAGS_FILE}\""
            ));
            let hostname = context
                .outputs
                .iter()
                .find(|(name, _)| name == crate::HOSTNAME_OUTPUT)
                .map(|(_, value)| value.as_str());
            write_text(
                KUBELET_ROOT,
                FLAGS_FILE,
                &crate::flags_file(&config, hostname),
                FILE_MODE,
            )?;

            let node_local_cri_socket = node_local_cri_socket(&config);
            if node_local_cri_socket {
                info(format!(
                    "[kubelet-start] Writing kubelet configuration to file \"{KUBELET_DIR}/{INSTANCE_CONFIG_FILE}\""
                ));
                write_text(
                    KUBELET_ROOT,
                    INSTANCE_CONFIG_FILE,
                    &crate::instance_config(&config),
                    FILE_MODE,
                )?;
            }

            // kubeadm asks the init system whether systemd-resolved is active; its
            // resolv.conf under /run is there while it runs.
            let systemd_resolved = node::path_exists(SYSTEMD_RESOLV_CONF)?;
            let file = crate::config_file(&config, systemd_resolved).map_err(failed)?;
            if let Some(warning) = file.warning {
                warn(warning);
            }
            if node_local_cri_socket {
                info(crate::INSTANCE_PATCH_LINE);
            }
            info(format!(
                "[kubelet-start] Writing kubelet configuration to file \"{KUBELET_DIR}/{CONFIG_FILE}\""
            ));
            write_text(KUBELET_ROOT, CONFIG_FILE, &file.yaml, FILE_MODE)?;

            info("[kubelet-start] Starting the kubelet");
            control_service(ServiceStep::Start)?;
            let outputs = if file.resolv_conf_set {
                vec![(
                    RESOLV_CONF_OUTPUT.to_string(),
                    SYSTEMD_RESOLV_CONF.to_string(),
                )]
            } else {
                vec![]
            };
            Ok(PhaseReport { outputs })
        }
    }

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
