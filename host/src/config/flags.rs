//! `kubeforge init` flags that map onto the configuration, and kubeadm's rule for mixing them
//! with `--config`.

use kubeforge_api::v1beta4::{BootstrapToken, Patches};
use kubeforge_api::{Duration, EffectiveConfig};

use super::defaults::DEFAULT_TOKEN_DESCRIPTION;
use super::error::ConfigError;

/// The config-related flags of `init`; `None`/empty/`false` means "not given on the command
/// line". The CLI fills this from its parser.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InitFlags {
    /// `--kubernetes-version`
    pub kubernetes_version: Option<String>,
    /// `--apiserver-advertise-address`
    pub apiserver_advertise_address: Option<String>,
    /// `--apiserver-bind-port`
    pub apiserver_bind_port: Option<u16>,
    /// `--apiserver-cert-extra-sans` (comma-separated on the command line)
    pub apiserver_cert_extra_sans: Vec<String>,
    /// `--control-plane-endpoint`
    pub control_plane_endpoint: Option<String>,
    /// `--node-name`
    pub node_name: Option<String>,
    /// `--service-cidr`
    pub service_cidr: Option<String>,
    /// `--pod-network-cidr`
    pub pod_network_cidr: Option<String>,
    /// `--service-dns-domain`
    pub service_dns_domain: Option<String>,
    /// `--cert-dir`
    pub cert_dir: Option<String>,
    /// `--cri-socket`
    pub cri_socket: Option<String>,
    /// `--image-repository`
    pub image_repository: Option<String>,
    /// `--feature-gates`, as given: `Name=true,Other=false`
    pub feature_gates: Option<String>,
    /// `--token`
    pub token: Option<String>,
    /// `--token-ttl`, a Go duration such as `24h0m0s`
    pub token_ttl: Option<String>,
    /// `--certificate-key`
    pub certificate_key: Option<String>,
    /// `--patches`
    pub patches: Option<String>,
    /// `--ignore-preflight-errors`
    pub ignore_preflight_errors: Vec<String>,
    /// `--skip-phases`
    pub skip_phases: Vec<String>,
    /// `--dry-run`
    pub dry_run: bool,
}

impl InitFlags {
    /// The long names of the flags that were given, sorted as pflag visits them.
    fn set_flag_names(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = [
            ("kubernetes-version", self.kubernetes_version.is_some()),
            (
                "apiserver-advertise-address",
                self.apiserver_advertise_address.is_some(),
            ),
            ("apiserver-bind-port", self.apiserver_bind_port.is_some()),
            (
                "apiserver-cert-extra-sans",
                !self.apiserver_cert_extra_sans.is_empty(),
            ),
            (
                "control-plane-endpoint",
                self.control_plane_endpoint.is_some(),
            ),
            ("node-name", self.node_name.is_some()),
            ("service-cidr", self.service_cidr.is_some()),
            ("pod-network-cidr", self.pod_network_cidr.is_some()),
            ("service-dns-domain", self.service_dns_domain.is_some()),
            ("cert-dir", self.cert_dir.is_some()),
            ("cri-socket", self.cri_socket.is_some()),
            ("image-repository", self.image_repository.is_some()),
            ("feature-gates", self.feature_gates.is_some()),
            ("token", self.token.is_some()),
            ("token-ttl", self.token_ttl.is_some()),
            ("certificate-key", self.certificate_key.is_some()),
            ("patches", self.patches.is_some()),
            (
                "ignore-preflight-errors",
                !self.ignore_preflight_errors.is_empty(),
            ),
            ("skip-phases", !self.skip_phases.is_empty()),
            ("dry-run", self.dry_run),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect();
        names.sort_unstable();
        names
    }
}

/// Whether kubeadm accepts a flag alongside `--config` (its `isAllowedFlag`): everything else
/// would silently lose to the file, so it is refused instead.
fn allowed_with_config(flag: &str) -> bool {
    const ALLOWED: [&str; 11] = [
        "config",
        "ignore-preflight-errors",
        "dry-run",
        "kubeconfig",
        "node-name",
        "kubeconfig-dir",
        "upload-certs",
        "print-join-command",
        "rootfs",
        "v",
        "log-file",
    ];
    ALLOWED.contains(&flag) || flag.starts_with("skip-")
}

/// Refuses flags that kubeadm does not allow together with `--config`.
pub(super) fn check_mixed_arguments(flags: &InitFlags) -> Result<(), ConfigError> {
    let refused: Vec<String> = flags
        .set_flag_names()
        .into_iter()
        .filter(|name| !allowed_with_config(name))
        .map(String::from)
        .collect();
    if refused.is_empty() {
        Ok(())
    } else {
        Err(ConfigError::MixedArguments(refused))
    }
}

/// Applies the flags allowed with `--config` on top of a loaded file: `--skip-phases` replaces
/// the file's list, `--ignore-preflight-errors` adds to it, `--dry-run` and `--node-name`
/// override.
pub(super) fn apply_flags_allowed_with_config(flags: &InitFlags, config: &mut EffectiveConfig) {
    let init = &mut config.init;
    if !flags.skip_phases.is_empty() {
        init.skip_phases = flags.skip_phases.clone();
    }
    init.dry_run |= flags.dry_run;
    let ignored = &mut init.node_registration.ignore_preflight_errors;
    for check in &flags.ignore_preflight_errors {
        if !ignored
            .iter()
            .any(|known| known.eq_ignore_ascii_case(check))
        {
            ignored.push(check.clone());
        }
    }
    if let Some(name) = &flags.node_name {
        init.node_registration.name = Some(name.clone());
    }
}

/// Applies every flag to a configuration built without a file.
pub(super) fn apply_all_flags(
    flags: &InitFlags,
    config: &mut EffectiveConfig,
) -> Result<(), ConfigError> {
    apply_flags_allowed_with_config(flags, config);
    let init = &mut config.init;
    let cluster = &mut config.cluster;
    let set = |field: &mut Option<String>, flag: &Option<String>| {
        if let Some(value) = flag {
            *field = Some(value.clone());
        }
    };
    set(&mut cluster.kubernetes_version, &flags.kubernetes_version);
    set(
        &mut init.local_api_endpoint.advertise_address,
        &flags.apiserver_advertise_address,
    );
    if let Some(port) = flags.apiserver_bind_port {
        init.local_api_endpoint.bind_port = Some(i32::from(port));
    }
    cluster
        .api_server
        .cert_sans
        .extend(flags.apiserver_cert_extra_sans.iter().cloned());
    set(
        &mut cluster.control_plane_endpoint,
        &flags.control_plane_endpoint,
    );
    set(&mut cluster.networking.service_subnet, &flags.service_cidr);
    set(&mut cluster.networking.pod_subnet, &flags.pod_network_cidr);
    set(
        &mut cluster.networking.dns_domain,
        &flags.service_dns_domain,
    );
    set(&mut cluster.certificates_dir, &flags.cert_dir);
    set(&mut init.node_registration.cri_socket, &flags.cri_socket);
    set(&mut cluster.image_repository, &flags.image_repository);
    set(&mut init.certificate_key, &flags.certificate_key);
    if let Some(directory) = &flags.patches {
        init.patches = Some(Patches {
            directory: Some(directory.clone()),
        });
    }
    if let Some(gates) = &flags.feature_gates {
        cluster.feature_gates.extend(parse_feature_gates(gates)?);
    }
    // kubeadm's BootstrapTokenOptions.ApplyTo: without --config, init's only token is the one
    // its flags describe (--token, --token-ttl and the default description), always.
    let ttl = flags
        .token_ttl
        .as_deref()
        .map(|text| {
            text.parse::<Duration>().map_err(|err| ConfigError::Flag {
                flag: "token-ttl",
                value: text.to_owned(),
                reason: err.to_string(),
            })
        })
        .transpose()?;
    init.bootstrap_tokens = vec![BootstrapToken {
        token: flags.token.clone(),
        ttl,
        description: Some(DEFAULT_TOKEN_DESCRIPTION.into()),
        ..Default::default()
    }];
    Ok(())
}

/// `Name=true,Other=false` as `--feature-gates` takes it.
fn parse_feature_gates(text: &str) -> Result<Vec<(String, bool)>, ConfigError> {
    let flag_error = |reason: String| ConfigError::Flag {
        flag: "feature-gates",
        value: text.to_owned(),
        reason,
    };
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| flag_error(format!("missing bool value for {}", pair.trim())))?;
            let enabled = value.trim().parse::<bool>().map_err(|_| {
                flag_error(format!(
                    "invalid value of {}: {}, expected true or false",
                    name.trim(),
                    value.trim()
                ))
            })?;
            Ok((name.trim().to_owned(), enabled))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_kubeadms_allowed_flags_mix_with_config() {
        let allowed = InitFlags {
            node_name: Some("n".into()),
            skip_phases: vec!["addon/kube-proxy".into()],
            ignore_preflight_errors: vec!["Swap".into()],
            dry_run: true,
            ..Default::default()
        };
        assert!(check_mixed_arguments(&allowed).is_ok());

        let mixed = InitFlags {
            service_cidr: Some("10.0.0.0/16".into()),
            apiserver_bind_port: Some(8443),
            certificate_key: Some("00".into()),
            patches: Some("/p".into()),
            dry_run: true,
            ..Default::default()
        };
        let message = check_mixed_arguments(&mixed).unwrap_err().to_string();
        assert_eq!(
            message,
            "can not mix '--config' with arguments [apiserver-bind-port certificate-key patches service-cidr]"
        );
        assert!(check_mixed_arguments(&InitFlags::default()).is_ok());
    }

    #[test]
    fn allowed_flags_apply_on_top_of_a_file() {
        let mut config = EffectiveConfig::default();
        config.init.skip_phases = vec!["preflight".into()];
        config.init.node_registration.ignore_preflight_errors = vec!["swap".into()];
        let flags = InitFlags {
            skip_phases: vec!["addon/coredns".into()],
            ignore_preflight_errors: vec!["Swap".into(), "NumCPU".into()],
            dry_run: true,
            node_name: Some("override".into()),
            ..Default::default()
        };
        apply_flags_allowed_with_config(&flags, &mut config);
        assert_eq!(config.init.skip_phases, ["addon/coredns"]);
        assert_eq!(
            config.init.node_registration.ignore_preflight_errors,
            ["swap", "NumCPU"]
        );
        assert!(config.init.dry_run);
        assert_eq!(
            config.init.node_registration.name.as_deref(),
            Some("override")
        );
    }

    #[test]
    fn every_flag_fills_its_field_without_a_file() {
        let flags = InitFlags {
            kubernetes_version: Some("v1.34.0".into()),
            apiserver_advertise_address: Some("10.0.0.2".into()),
            apiserver_bind_port: Some(8443),
            apiserver_cert_extra_sans: vec!["lb.example.com".into(), "10.0.0.100".into()],
            control_plane_endpoint: Some("lb.example.com:443".into()),
            node_name: Some("cp-1".into()),
            service_cidr: Some("10.100.0.0/16".into()),
            pod_network_cidr: Some("10.244.0.0/16".into()),
            service_dns_domain: Some("corp.local".into()),
            cert_dir: Some("/srv/pki".into()),
            cri_socket: Some("unix:///run/crio/crio.sock".into()),
            image_repository: Some("mirror.example.com/k8s".into()),
            feature_gates: Some("RootlessControlPlane=true, PublicKeysECDSA=false".into()),
            token: Some("abcdef.0123456789abcdef".into()),
            token_ttl: Some("2h".into()),
            certificate_key: Some("ab".repeat(32)),
            patches: Some("/srv/patches".into()),
            ignore_preflight_errors: vec!["all".into()],
            skip_phases: vec!["addon".into()],
            dry_run: true,
        };
        let mut config = EffectiveConfig::default();
        apply_all_flags(&flags, &mut config).unwrap();
        let (init, cluster) = (&config.init, &config.cluster);
        assert_eq!(cluster.kubernetes_version.as_deref(), Some("v1.34.0"));
        assert_eq!(
            init.local_api_endpoint.advertise_address.as_deref(),
            Some("10.0.0.2")
        );
        assert_eq!(init.local_api_endpoint.bind_port, Some(8443));
        assert_eq!(
            cluster.api_server.cert_sans,
            ["lb.example.com", "10.0.0.100"]
        );
        assert_eq!(
            cluster.control_plane_endpoint.as_deref(),
            Some("lb.example.com:443")
        );
        assert_eq!(init.node_registration.name.as_deref(), Some("cp-1"));
        assert_eq!(
            cluster.networking.service_subnet.as_deref(),
            Some("10.100.0.0/16")
        );
        assert_eq!(
            cluster.networking.pod_subnet.as_deref(),
            Some("10.244.0.0/16")
        );
        assert_eq!(cluster.networking.dns_domain.as_deref(), Some("corp.local"));
        assert_eq!(cluster.certificates_dir.as_deref(), Some("/srv/pki"));
        assert_eq!(
            init.node_registration.cri_socket.as_deref(),
            Some("unix:///run/crio/crio.sock")
        );
        assert_eq!(
            cluster.image_repository.as_deref(),
            Some("mirror.example.com/k8s")
        );
        assert_eq!(
            cluster.feature_gates.get("RootlessControlPlane"),
            Some(&true)
        );
        assert_eq!(cluster.feature_gates.get("PublicKeysECDSA"), Some(&false));
        assert_eq!(init.bootstrap_tokens.len(), 1);
        assert_eq!(
            init.bootstrap_tokens[0].token.as_deref(),
            Some("abcdef.0123456789abcdef")
        );
        assert_eq!(init.bootstrap_tokens[0].ttl, Some(Duration::from_hours(2)));
        assert_eq!(
            init.certificate_key.as_deref(),
            Some("ab".repeat(32).as_str())
        );
        assert_eq!(
            init.patches.as_ref().and_then(|p| p.directory.as_deref()),
            Some("/srv/patches")
        );
        assert_eq!(init.node_registration.ignore_preflight_errors, ["all"]);
        assert_eq!(init.skip_phases, ["addon"]);
        assert!(init.dry_run);
    }

    #[test]
    fn bad_flag_values_name_the_flag() {
        let flags = InitFlags {
            token_ttl: Some("1 day".into()),
            ..Default::default()
        };
        let message = apply_all_flags(&flags, &mut EffectiveConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with("invalid value \"1 day\" for flag --token-ttl"),
            "{message}"
        );

        let flags = InitFlags {
            feature_gates: Some("Foo".into()),
            ..Default::default()
        };
        let message = apply_all_flags(&flags, &mut EffectiveConfig::default())
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("--feature-gates") && message.contains("missing bool value"),
            "{message}"
        );
    }
}
