//! Host bindings for the `kubeforge:phase` world (wit/phase.wit).

wasmtime::component::bindgen!({
    world: "phase-component",
    path: "../wit",
    imports: { default: trappable },
    exports: { default: async },
    with: {
        "kubeforge:phase/pki.private-key": crate::capabilities::pki::KeyHandle,
        "kubeforge:phase/pki.authority": crate::capabilities::pki::AuthorityHandle,
    },
});

pub use exports::kubeforge::phase::phase::{
    CapabilityRequest, PhaseContext, PhaseInfo, PhaseReport, SubPhase,
};
pub use kubeforge::phase::types::{Denial, FieldError, PhaseError};
