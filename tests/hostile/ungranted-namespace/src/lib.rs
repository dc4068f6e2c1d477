//! Asks for (and is granted) applying ConfigMaps in kube-system, then applies objects in other
//! namespaces: denied before any request reaches the API server.

use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, kube, requests};

struct Component;

const OUTSIDE: [(&str, &str); 2] = [
    (
        "a ConfigMap in default",
        "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"hostile\",\"namespace\":\"default\"}}",
    ),
    (
        "a Secret in kube-public",
        "{\"apiVersion\":\"v1\",\"kind\":\"Secret\",\"metadata\":{\"name\":\"hostile\",\"namespace\":\"kube-public\"}}",
    ),
];

impl Guest for Component {
    fn describe() -> PhaseInfo {
        let mut info = hostile_common::info("ungranted-namespace", &[], &[]);
        info.requests.kube = vec![requests::rule(
            &["apply"],
            &["configmaps"],
            &["kube-system"],
        )];
        info
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = hostile_common::Attempts::default();
        for (what, manifest) in OUTSIDE {
            attempts.refused(what, kube::apply(manifest));
        }
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
