//! kubeadm's conversions of the other config API versions to v1beta4, which is all the rest of
//! kubeforge reads.
//!
//! kubeadm converts every version to its internal type and writes v1beta4 from that; the
//! internal type is v1beta4 plus the few fields these functions carry across by hand, so a
//! direct conversion gives the same objects. v1beta3's defaults equal v1beta4's for every field
//! the two share, so a converted document is defaulted as v1beta4 afterwards; what is set here
//! is what kubeadm's conversion functions set themselves (v1beta3/conversion.go).

use std::collections::BTreeMap;

use kubeforge_api::v1beta4::{self, Arg, EncryptionAlgorithm};
use kubeforge_api::{Duration, v1, v1beta3};

use super::defaults::{
    DEFAULT_CA_CERTIFICATE_VALIDITY, DEFAULT_CERTIFICATE_VALIDITY, default_timeouts,
};
use super::error::FieldError;

/// v1beta3's `apiServer.timeoutForControlPlane` default (kubeadm's
/// `ControlPlaneComponentHealthCheckTimeout`).
pub(super) const DEFAULT_V1BETA3_CONTROL_PLANE_TIMEOUT: Duration = Duration::from_mins(4);

/// v1beta3's `discovery.timeout` default (kubeadm's `DefaultDiscoveryTimeout`).
const DEFAULT_V1BETA3_DISCOVERY_TIMEOUT: Duration = Duration::from_mins(5);

/// kubeadm's `convertToArgs`: a v1beta3 map of arguments as v1beta4's list, sorted by name (Go's
/// byte order, which is a `BTreeMap`'s).
fn args_from_map(args: BTreeMap<String, String>) -> Vec<Arg> {
    args.into_iter()
        .map(|(name, value)| Arg { name, value })
        .collect()
}

fn node_registration_from_v1beta3(
    registration: v1beta3::NodeRegistrationOptions,
) -> v1beta4::NodeRegistrationOptions {
    v1beta4::NodeRegistrationOptions {
        name: registration.name,
        cri_socket: registration.cri_socket,
        taints: registration.taints,
        kubelet_extra_args: args_from_map(registration.kubelet_extra_args),
        ignore_preflight_errors: registration.ignore_preflight_errors,
        image_pull_policy: registration.image_pull_policy,
        // v1beta3 always pulled one image at a time.
        image_pull_serial: Some(true),
    }
}

/// A v1beta3 InitConfiguration; v1beta3 has no timeouts, so kubeadm sets all of them to their
/// defaults (v1beta3's control-plane wait is the ClusterConfiguration's, see
/// [`cluster_from_v1beta3`]).
pub(super) fn init_from_v1beta3(init: v1beta3::InitConfiguration) -> v1beta4::InitConfiguration {
    v1beta4::InitConfiguration {
        bootstrap_tokens: init.bootstrap_tokens,
        node_registration: node_registration_from_v1beta3(init.node_registration),
        local_api_endpoint: init.local_api_endpoint,
        certificate_key: init.certificate_key,
        skip_phases: init.skip_phases,
        patches: init.patches,
        timeouts: Some(default_timeouts()),
        ..Default::default()
    }
}

/// A v1beta3 ClusterConfiguration, and its `apiServer.timeoutForControlPlane` (defaulted), which
/// v1beta4 keeps in the InitConfiguration's timeouts: the caller decides where it lands, as
/// kubeadm's commands differ there. The fields v1beta3 lacks get the values kubeadm's
/// conversion hard-sets (RSA-2048 keys, one-year certificates, ten-year CAs, both add-ons).
pub(super) fn cluster_from_v1beta3(
    cluster: v1beta3::ClusterConfiguration,
) -> (v1beta4::ClusterConfiguration, Duration) {
    let component = |component: v1beta3::ControlPlaneComponent| v1beta4::ControlPlaneComponent {
        extra_args: args_from_map(component.extra_args),
        extra_volumes: component.extra_volumes,
        extra_envs: Vec::new(),
    };
    let api_server = cluster.api_server;
    let control_plane_timeout = api_server
        .timeout_for_control_plane
        .unwrap_or(DEFAULT_V1BETA3_CONTROL_PLANE_TIMEOUT);
    let converted = v1beta4::ClusterConfiguration {
        etcd: v1beta4::Etcd {
            local: cluster.etcd.local.map(|local| v1beta4::LocalEtcd {
                image_repository: local.image_repository,
                image_tag: local.image_tag,
                data_dir: local.data_dir,
                extra_args: args_from_map(local.extra_args),
                extra_envs: Vec::new(),
                server_cert_sans: local.server_cert_sans,
                peer_cert_sans: local.peer_cert_sans,
            }),
            // v1beta3 had one list of endpoints; kubeadm uses it for the HTTP checks too.
            external: cluster.etcd.external.map(|external| v1beta4::ExternalEtcd {
                http_endpoints: external.endpoints.clone(),
                endpoints: external.endpoints,
                ca_file: external.ca_file,
                cert_file: external.cert_file,
                key_file: external.key_file,
            }),
        },
        networking: cluster.networking,
        kubernetes_version: cluster.kubernetes_version,
        control_plane_endpoint: cluster.control_plane_endpoint,
        api_server: v1beta4::ApiServer {
            extra_args: args_from_map(api_server.extra_args),
            extra_volumes: api_server.extra_volumes,
            extra_envs: Vec::new(),
            cert_sans: api_server.cert_sans,
        },
        controller_manager: component(cluster.controller_manager),
        scheduler: component(cluster.scheduler),
        dns: v1beta4::Dns {
            image_repository: cluster.dns.image_repository,
            image_tag: cluster.dns.image_tag,
            disabled: false,
        },
        certificates_dir: cluster.certificates_dir,
        image_repository: cluster.image_repository,
        feature_gates: cluster.feature_gates,
        cluster_name: cluster.cluster_name,
        encryption_algorithm: Some(EncryptionAlgorithm::Rsa2048),
        certificate_validity_period: Some(DEFAULT_CERTIFICATE_VALIDITY),
        ca_certificate_validity_period: Some(DEFAULT_CA_CERTIFICATE_VALIDITY),
        ..Default::default()
    };
    (converted, control_plane_timeout)
}

/// A v1beta3 JoinConfiguration: `discovery.timeout` (defaulted) becomes `timeouts.discovery`,
/// the other timeouts get their defaults.
pub(super) fn join_from_v1beta3(join: v1beta3::JoinConfiguration) -> v1beta4::JoinConfiguration {
    let discovery = join.discovery;
    let mut timeouts = default_timeouts();
    timeouts.discovery = Some(
        discovery
            .timeout
            .unwrap_or(DEFAULT_V1BETA3_DISCOVERY_TIMEOUT),
    );
    v1beta4::JoinConfiguration {
        node_registration: node_registration_from_v1beta3(join.node_registration),
        ca_cert_path: join.ca_cert_path,
        discovery: v1beta4::Discovery {
            bootstrap_token: discovery.bootstrap_token,
            file: discovery.file,
            tls_bootstrap_token: discovery.tls_bootstrap_token,
        },
        control_plane: join.control_plane,
        skip_phases: join.skip_phases,
        patches: join.patches,
        timeouts: Some(timeouts),
        ..Default::default()
    }
}

/// Converts v1 documents to v1beta4, dropping each argument's `mergeMethod` as kubeadm's
/// v1beta4 conversion does, after checking it as kubeadm's validation does.
#[derive(Default)]
pub(super) struct FromV1 {
    /// kubeadm's `argument has an invalid merge method` errors, in the order it reports them.
    pub errors: Vec<FieldError>,
}

impl FromV1 {
    fn args(&mut self, args: Vec<v1::Arg>, path: &str) -> Vec<Arg> {
        args.into_iter()
            .enumerate()
            .map(|(index, arg)| {
                if let Some(method) = arg.merge_method.as_deref()
                    && !method.is_empty()
                    && !matches!(method, "append" | "prepend")
                {
                    self.errors.push(FieldError::invalid(
                        path,
                        format!("index {index}"),
                        "argument has an invalid merge method",
                    ));
                }
                Arg {
                    name: arg.name,
                    value: arg.value,
                }
            })
            .collect()
    }

    fn component(
        &mut self,
        component: v1::ControlPlaneComponent,
        path: &str,
    ) -> v1beta4::ControlPlaneComponent {
        v1beta4::ControlPlaneComponent {
            extra_args: self.args(component.extra_args, path),
            extra_volumes: component.extra_volumes,
            extra_envs: component.extra_envs,
        }
    }

    fn node_registration(
        &mut self,
        registration: v1::NodeRegistrationOptions,
    ) -> v1beta4::NodeRegistrationOptions {
        v1beta4::NodeRegistrationOptions {
            name: registration.name,
            cri_socket: registration.cri_socket,
            taints: registration.taints,
            kubelet_extra_args: self.args(
                registration.kubelet_extra_args,
                "nodeRegistration.kubeletExtraArgs",
            ),
            ignore_preflight_errors: registration.ignore_preflight_errors,
            image_pull_policy: registration.image_pull_policy,
            image_pull_serial: registration.image_pull_serial,
        }
    }

    pub(super) fn init(&mut self, init: v1::InitConfiguration) -> v1beta4::InitConfiguration {
        v1beta4::InitConfiguration {
            bootstrap_tokens: init.bootstrap_tokens,
            dry_run: init.dry_run,
            node_registration: self.node_registration(init.node_registration),
            local_api_endpoint: init.local_api_endpoint,
            certificate_key: init.certificate_key,
            skip_phases: init.skip_phases,
            patches: init.patches,
            timeouts: init.timeouts,
            ..Default::default()
        }
    }

    pub(super) fn cluster(
        &mut self,
        cluster: v1::ClusterConfiguration,
    ) -> v1beta4::ClusterConfiguration {
        let api_server = v1beta4::ApiServer {
            extra_args: self.args(cluster.api_server.extra_args, "apiServer.extraArgs"),
            extra_volumes: cluster.api_server.extra_volumes,
            extra_envs: cluster.api_server.extra_envs,
            cert_sans: cluster.api_server.cert_sans,
        };
        let controller_manager =
            self.component(cluster.controller_manager, "controllerManager.extraArgs");
        let scheduler = self.component(cluster.scheduler, "scheduler.extraArgs");
        let local = cluster.etcd.local.map(|local| v1beta4::LocalEtcd {
            image_repository: local.image_repository,
            image_tag: local.image_tag,
            data_dir: local.data_dir,
            extra_args: self.args(local.extra_args, "etcd.local.extraArgs"),
            extra_envs: local.extra_envs,
            server_cert_sans: local.server_cert_sans,
            peer_cert_sans: local.peer_cert_sans,
        });
        v1beta4::ClusterConfiguration {
            etcd: v1beta4::Etcd {
                local,
                external: cluster.etcd.external,
            },
            networking: cluster.networking,
            kubernetes_version: cluster.kubernetes_version,
            control_plane_endpoint: cluster.control_plane_endpoint,
            api_server,
            controller_manager,
            scheduler,
            dns: cluster.dns,
            proxy: cluster.proxy,
            certificates_dir: cluster.certificates_dir,
            image_repository: cluster.image_repository,
            feature_gates: cluster.feature_gates,
            cluster_name: cluster.cluster_name,
            encryption_algorithm: cluster.encryption_algorithm,
            certificate_validity_period: cluster.certificate_validity_period,
            ca_certificate_validity_period: cluster.ca_certificate_validity_period,
            ..Default::default()
        }
    }

    pub(super) fn join(&mut self, join: v1::JoinConfiguration) -> v1beta4::JoinConfiguration {
        v1beta4::JoinConfiguration {
            dry_run: join.dry_run,
            node_registration: self.node_registration(join.node_registration),
            ca_cert_path: join.ca_cert_path,
            discovery: join.discovery,
            control_plane: join.control_plane,
            skip_phases: join.skip_phases,
            patches: join.patches,
            timeouts: join.timeouts,
            ..Default::default()
        }
    }
}

/// A v1 ResetConfiguration: the same fields as v1beta4's.
pub(super) fn reset_from_v1(reset: v1::ResetConfiguration) -> v1beta4::ResetConfiguration {
    v1beta4::ResetConfiguration {
        cleanup_tmp_dir: reset.cleanup_tmp_dir,
        certificates_dir: reset.certificates_dir,
        cri_socket: reset.cri_socket,
        dry_run: reset.dry_run,
        force: reset.force,
        ignore_preflight_errors: reset.ignore_preflight_errors,
        skip_phases: reset.skip_phases,
        unmount_flags: reset.unmount_flags,
        timeouts: reset.timeouts,
        ..Default::default()
    }
}

/// A v1 UpgradeConfiguration: the same fields as v1beta4's.
pub(super) fn upgrade_from_v1(upgrade: v1::UpgradeConfiguration) -> v1beta4::UpgradeConfiguration {
    v1beta4::UpgradeConfiguration {
        apply: upgrade.apply,
        diff: upgrade.diff,
        node: upgrade.node,
        plan: upgrade.plan,
        timeouts: upgrade.timeouts,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests;
