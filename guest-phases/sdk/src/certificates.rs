//! What `ClusterConfiguration` says about every certificate a phase issues: the key algorithm
//! and the validity periods.

use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::EncryptionAlgorithm;

use crate::bindings::kubeforge::phase::pki::KeyAlgorithm;
use crate::bindings::kubeforge::phase::types::{FieldError, PhaseError};

/// kubeadm's `CertificateValidityPeriod`: one year.
const DEFAULT_CERTIFICATE_VALIDITY_SECONDS: u64 = 8760 * 3600;
/// kubeadm's `CACertificateValidityPeriod`: ten years.
const DEFAULT_CA_CERTIFICATE_VALIDITY_SECONDS: u64 = 87600 * 3600;

/// The key type of every generated key pair (`encryptionAlgorithm`, RSA-2048 when unset, as
/// kubeadm treats an empty value; see [`EffectiveConfig::encryption_algorithm`]).
pub fn key_algorithm(config: &EffectiveConfig) -> KeyAlgorithm {
    match config.encryption_algorithm() {
        EncryptionAlgorithm::Rsa2048 => KeyAlgorithm::Rsa2048,
        EncryptionAlgorithm::Rsa3072 => KeyAlgorithm::Rsa3072,
        EncryptionAlgorithm::Rsa4096 => KeyAlgorithm::Rsa4096,
        EncryptionAlgorithm::EcdsaP256 => KeyAlgorithm::EcdsaP256,
        EncryptionAlgorithm::EcdsaP384 => KeyAlgorithm::EcdsaP384,
    }
}

/// Lifetime of a certificate signed by a CA (`certificateValidityPeriod`).
pub fn certificate_validity_seconds(config: &EffectiveConfig) -> Result<u64, PhaseError> {
    validity_seconds(
        config.cluster.certificate_validity_period,
        "certificateValidityPeriod",
        DEFAULT_CERTIFICATE_VALIDITY_SECONDS,
    )
}

/// Lifetime of a self-signed CA certificate (`caCertificateValidityPeriod`).
pub fn ca_certificate_validity_seconds(config: &EffectiveConfig) -> Result<u64, PhaseError> {
    validity_seconds(
        config.cluster.ca_certificate_validity_period,
        "caCertificateValidityPeriod",
        DEFAULT_CA_CERTIFICATE_VALIDITY_SECONDS,
    )
}

/// Whole seconds of a configured period; kubeadm's built-in default when the field is unset.
fn validity_seconds(
    period: Option<kubeforge_api::Duration>,
    field: &str,
    default: u64,
) -> Result<u64, PhaseError> {
    let Some(period) = period else {
        return Ok(default);
    };
    match period.to_std().map(|d| d.as_secs()) {
        Some(seconds) if seconds > 0 => Ok(seconds),
        _ => Err(PhaseError::InvalidConfig(FieldError {
            field: field.into(),
            reason: format!("must be at least one second, got {period}"),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeforge_api::Duration;

    #[test]
    fn validity_defaults_to_kubeadm_periods_and_rejects_non_positive() {
        let mut config = EffectiveConfig::default();
        assert_eq!(certificate_validity_seconds(&config).ok(), Some(31_536_000));
        assert_eq!(
            ca_certificate_validity_seconds(&config).ok(),
            Some(315_360_000)
        );
        config.cluster.certificate_validity_period = Some(Duration::from_hours(48));
        assert_eq!(certificate_validity_seconds(&config).ok(), Some(172_800));
        config.cluster.ca_certificate_validity_period = Some(Duration::ZERO);
        assert!(matches!(
            ca_certificate_validity_seconds(&config),
            Err(PhaseError::InvalidConfig(FieldError { field, .. })) if field == "caCertificateValidityPeriod"
        ));
    }

    #[test]
    fn key_algorithm_follows_encryption_algorithm() {
        let mut config = EffectiveConfig::default();
        assert!(matches!(key_algorithm(&config), KeyAlgorithm::Rsa2048));
        config.cluster.encryption_algorithm = Some(EncryptionAlgorithm::EcdsaP256);
        assert!(matches!(key_algorithm(&config), KeyAlgorithm::EcdsaP256));
    }
}
