use serde::{Deserialize, Serialize};

use crate::release::Release;
use crate::v1beta4::{ClusterConfiguration, EncryptionAlgorithm, InitConfiguration};

/// kubeadm's deprecated feature gate that chose ECDSA keys before `encryptionAlgorithm`.
const PUBLIC_KEYS_ECDSA: &str = "PublicKeysECDSA";

/// kubeadm's `certificatesDir` default.
pub const DEFAULT_CERTIFICATES_DIR: &str = "/etc/kubernetes/pki";

/// The configuration the host hands to every phase as JSON, after defaulting and validation.
///
/// Every field a stock phase relies on (node name, advertise address, bind port, subnets,
/// DNS domain, directories, validity periods, encryption algorithm, timeouts …) is `Some`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EffectiveConfig {
    pub init: InitConfiguration,
    pub cluster: ClusterConfiguration,
    /// The file's `kubelet.config.k8s.io/v1beta1 KubeletConfiguration`, as written: the phases
    /// that write the kubelet's configuration lay it over kubeadm's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<serde_json::Value>,
    /// The file's `kubeproxy.config.k8s.io/v1alpha1 KubeProxyConfiguration`, as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_proxy: Option<serde_json::Value>,
}

/// Read access for phases. The host fills every one of these during defaulting, so the
/// empty/zero fallbacks only show up for a config that bypassed the host.
impl EffectiveConfig {
    pub fn node_name(&self) -> &str {
        self.init
            .node_registration
            .name
            .as_deref()
            .unwrap_or_default()
    }

    pub fn advertise_address(&self) -> &str {
        self.init
            .local_api_endpoint
            .advertise_address
            .as_deref()
            .unwrap_or_default()
    }

    /// `localAPIEndpoint.bindPort`, or 6443 when unset or out of range.
    pub fn bind_port(&self) -> u16 {
        self.init
            .local_api_endpoint
            .bind_port
            .and_then(|port| u16::try_from(port).ok())
            .filter(|&port| port != 0)
            .unwrap_or(crate::net::DEFAULT_BIND_PORT)
    }

    pub fn service_subnet(&self) -> &str {
        self.cluster
            .networking
            .service_subnet
            .as_deref()
            .unwrap_or_default()
    }

    pub fn dns_domain(&self) -> &str {
        self.cluster
            .networking
            .dns_domain
            .as_deref()
            .unwrap_or_default()
    }

    /// `certificatesDir`, or kubeadm's default when unset or empty.
    pub fn certificates_dir(&self) -> &str {
        self.cluster
            .certificates_dir
            .as_deref()
            .filter(|dir| !dir.is_empty())
            .unwrap_or(DEFAULT_CERTIFICATES_DIR)
    }

    pub fn kubernetes_version(&self) -> &str {
        self.cluster
            .kubernetes_version
            .as_deref()
            .unwrap_or_default()
    }

    pub fn image_repository(&self) -> &str {
        self.cluster.image_repository.as_deref().unwrap_or_default()
    }

    pub fn cluster_name(&self) -> &str {
        self.cluster.cluster_name.as_deref().unwrap_or_default()
    }

    /// The key type of every generated key pair, as kubeadm's `EncryptionAlgorithmType`: up to
    /// v1.36 the deprecated `PublicKeysECDSA` feature gate, when set at all, overrides
    /// `encryptionAlgorithm` (true: ECDSA-P256, false: RSA-2048); v1.37 removed the gate.
    pub fn encryption_algorithm(&self) -> EncryptionAlgorithm {
        let gate = self.cluster.feature_gates.get(PUBLIC_KEYS_ECDSA);
        match gate {
            Some(&ecdsa) if Release::of_version(self.kubernetes_version()).minor <= 36 => {
                if ecdsa {
                    EncryptionAlgorithm::EcdsaP256
                } else {
                    EncryptionAlgorithm::Rsa2048
                }
            }
            _ => self.cluster.encryption_algorithm.unwrap_or_default(),
        }
    }

    /// Whether etcd runs as a static pod on the control-plane nodes (not external).
    pub fn uses_local_etcd(&self) -> bool {
        self.cluster.etcd.external.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1beta4::ApiEndpoint;

    #[test]
    fn accessors_read_the_defaulted_fields() {
        let mut config = EffectiveConfig::default();
        assert_eq!(config.bind_port(), 6443);
        assert_eq!(config.node_name(), "");
        assert_eq!(config.certificates_dir(), "/etc/kubernetes/pki");
        assert!(config.uses_local_etcd());
        config.init.local_api_endpoint = ApiEndpoint {
            advertise_address: Some("10.0.0.1".into()),
            bind_port: Some(8443),
        };
        config.init.node_registration.name = Some("cp-1".into());
        config.cluster.networking.service_subnet = Some("10.96.0.0/12".into());
        config.cluster.networking.dns_domain = Some("cluster.local".into());
        config.cluster.encryption_algorithm = Some(EncryptionAlgorithm::EcdsaP256);
        config.cluster.etcd.external = Some(Default::default());
        assert_eq!(config.advertise_address(), "10.0.0.1");
        assert_eq!(config.bind_port(), 8443);
        assert_eq!(config.node_name(), "cp-1");
        assert_eq!(config.service_subnet(), "10.96.0.0/12");
        assert_eq!(config.dns_domain(), "cluster.local");
        assert_eq!(
            config.encryption_algorithm(),
            EncryptionAlgorithm::EcdsaP256
        );
        assert!(!config.uses_local_etcd());
        config.init.local_api_endpoint.bind_port = Some(70000);
        assert_eq!(config.bind_port(), 6443);
    }

    #[test]
    fn public_keys_ecdsa_overrides_the_encryption_algorithm_up_to_v1_36() {
        let mut config = EffectiveConfig::default();
        config.cluster.encryption_algorithm = Some(EncryptionAlgorithm::EcdsaP384);
        for (version, gate, expected) in [
            ("v1.35.4", Some(true), EncryptionAlgorithm::EcdsaP256),
            ("v1.36.3", Some(false), EncryptionAlgorithm::Rsa2048),
            ("v1.36.3", None, EncryptionAlgorithm::EcdsaP384),
            ("v1.37.2", Some(true), EncryptionAlgorithm::EcdsaP384),
        ] {
            config.cluster.kubernetes_version = Some(version.into());
            config.cluster.feature_gates.clear();
            if let Some(gate) = gate {
                config
                    .cluster
                    .feature_gates
                    .insert(PUBLIC_KEYS_ECDSA.into(), gate);
            }
            assert_eq!(
                config.encryption_algorithm(),
                expected,
                "{version} {gate:?}"
            );
        }
    }
}
