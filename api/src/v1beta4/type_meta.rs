//! `apiVersion` and `kind` as zero-sized markers: they always print, and decoding a document
//! with another value fails instead of silently reading the wrong kind.
//!
//! The kind markers check only the kind, so every kubeadm API version shares them; each API
//! version module declares its own `apiVersion` marker with [`api_version_marker`].

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a zero-sized `apiVersion` marker that prints and accepts exactly `$group_version`.
macro_rules! api_version_marker {
    ($marker:ident, $group_version:path) => {
        /// `apiVersion`: prints and accepts only this module's `GROUP_VERSION`.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $marker;

        impl serde::Serialize for $marker {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($group_version)
            }
        }

        impl<'de> serde::Deserialize<'de> for $marker {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let found = String::deserialize(deserializer)?;
                if found == $group_version {
                    Ok($marker)
                } else {
                    Err(<D::Error as serde::de::Error>::custom(format!(
                        "apiVersion: expected {:?}, found {found:?}",
                        $group_version
                    )))
                }
            }
        }
    };
}
pub(crate) use api_version_marker;

api_version_marker!(ApiVersion, super::GROUP_VERSION);

macro_rules! kind_marker {
    ($marker:ident, $kind:literal) => {
        #[doc = concat!("`kind: ", $kind, "`.")]
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct $marker;

        impl $marker {
            pub const NAME: &'static str = $kind;
        }

        impl Serialize for $marker {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str($kind)
            }
        }

        impl<'de> Deserialize<'de> for $marker {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let found = String::deserialize(deserializer)?;
                if found == $kind {
                    Ok($marker)
                } else {
                    Err(D::Error::custom(format!(
                        "kind: expected {:?}, found {found:?}",
                        $kind
                    )))
                }
            }
        }
    };
}

kind_marker!(InitConfigurationKind, "InitConfiguration");
kind_marker!(ClusterConfigurationKind, "ClusterConfiguration");
kind_marker!(JoinConfigurationKind, "JoinConfiguration");
kind_marker!(ResetConfigurationKind, "ResetConfiguration");
kind_marker!(UpgradeConfigurationKind, "UpgradeConfiguration");
