use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `ClusterConfiguration.encryptionAlgorithm`: the key type of every generated key pair.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EncryptionAlgorithm {
    #[default]
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EcdsaP256,
    EcdsaP384,
}

impl EncryptionAlgorithm {
    pub const ALL: [EncryptionAlgorithm; 5] = [
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::EcdsaP256,
        Self::EcdsaP384,
    ];

    /// The exact spelling kubeadm uses.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Rsa2048 => "RSA-2048",
            Self::Rsa3072 => "RSA-3072",
            Self::Rsa4096 => "RSA-4096",
            Self::EcdsaP256 => "ECDSA-P256",
            Self::EcdsaP384 => "ECDSA-P384",
        }
    }

    pub const fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }
}

impl fmt::Display for EncryptionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The value was not one of the five algorithms kubeadm supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedEncryptionAlgorithm(pub String);

impl fmt::Display for UnsupportedEncryptionAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let supported: Vec<&str> = EncryptionAlgorithm::ALL
            .iter()
            .map(|a| a.as_str())
            .collect();
        write!(
            f,
            "encryptionAlgorithm: Invalid value: {:?}: must be one of {}",
            self.0,
            supported.join(", ")
        )
    }
}

impl std::error::Error for UnsupportedEncryptionAlgorithm {}

impl FromStr for EncryptionAlgorithm {
    type Err = UnsupportedEncryptionAlgorithm;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.as_str() == value)
            .ok_or_else(|| UnsupportedEncryptionAlgorithm(value.to_owned()))
    }
}

impl Serialize for EncryptionAlgorithm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EncryptionAlgorithm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
