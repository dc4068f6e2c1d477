//! `apiVersion` and `kind` as zero-sized markers: they always print, and decoding a document
//! with another value fails instead of silently reading the wrong kind.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::GROUP_VERSION;

/// `apiVersion: kubeadm.k8s.io/v1beta4`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApiVersion;

impl Serialize for ApiVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(GROUP_VERSION)
    }
}

impl<'de> Deserialize<'de> for ApiVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let found = String::deserialize(deserializer)?;
        if found == GROUP_VERSION {
            Ok(ApiVersion)
        } else {
            Err(D::Error::custom(format!(
                "apiVersion: expected {GROUP_VERSION:?}, found {found:?}"
            )))
        }
    }
}

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
