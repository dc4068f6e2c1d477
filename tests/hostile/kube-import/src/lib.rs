//! Imports `kubeforge:phase/kube` without asking for any kube grant in `describe()`, and applies
//! a Secret in kube-system.

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, kube};

struct Component;

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: hostile
  namespace: kube-system
stringData:
  owned: \"yes\"
";

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("kube-import", &[], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        kube::apply(SECRET)?;
        Err(PhaseError::Failed(
            "ESCAPED: applied a Secret in kube-system without a kube grant".into(),
        ))
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
