//! `kubeforge:phase/node`: facts about the node, for the paths the grant names.

use crate::capabilities::PhaseState;
use crate::runtime::bindings::PhaseError;
use crate::runtime::bindings::kubeforge::phase::node::Host;

impl Host for PhaseState {
    fn path_exists(&mut self, path: String) -> wasmtime::Result<Result<bool, PhaseError>> {
        if !self.grant.node_paths.contains(&path) {
            return Ok(Err(self.deny("node", format!("path-exists {path}"))));
        }
        Ok(Ok(self.host.node_path(&path).exists()))
    }
}
