use serde::{Deserialize, Serialize};

use crate::v1beta4::{ClusterConfiguration, InitConfiguration};

/// The configuration the host hands to every phase as JSON, after defaulting and validation.
///
/// Every field a stock phase relies on (node name, advertise address, bind port, subnets,
/// DNS domain, directories, validity periods, encryption algorithm, timeouts …) is `Some`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EffectiveConfig {
    pub init: InitConfiguration,
    pub cluster: ClusterConfiguration,
}
