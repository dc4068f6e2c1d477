//! Host bindings for the `kubeforge:phase` world (wit/phase.wit).

wasmtime::component::bindgen!({
    world: "phase-component",
    path: "../wit",
    // The API calls, service control and probes wait on the network or a process: async, so the run's deadline still bounds them.
    imports: {
        default: trappable,
        "kubeforge:phase/kube.apply": async | trappable,
        "kubeforge:phase/kube.get": async | trappable,
        "kubeforge:phase/kube.delete": async | trappable,
        "kubeforge:phase/kube.patch": async | trappable,
        "kubeforge:phase/kube.wait": async | trappable,
        "kubeforge:phase/node.control-service": async | trappable,
        "kubeforge:phase/node.probe": async | trappable,
    },
    exports: { default: async },
    with: {
        "kubeforge:phase/pki.private-key": crate::capabilities::pki::KeyHandle,
        "kubeforge:phase/pki.authority": crate::capabilities::pki::AuthorityHandle,
    },
});

pub use self::kubeforge::phase::types::{Denial, FieldError, PhaseError};
pub use exports::kubeforge::phase::phase::{
    CapabilityRequest, KubeRule, PhaseContext, PhaseInfo, PhaseReport, SubPhase,
};
