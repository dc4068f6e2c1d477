//! Granted only `kubeconfig` (/etc/kubernetes) read-write, reaches into the roots nested in it:
//! a static Pod in `manifests` (code run as root by the kubelet), a key in `pki`, the journal
//! in `tmp`.

use hostile_common::Attempts;
use kubeforge_sdk::pki::{KeyAlgorithm, PrivateKey};
use kubeforge_sdk::{Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, fs};

struct Component;

const STATIC_POD: &[u8] = b"apiVersion: v1
kind: Pod
metadata:
  name: hostile
  namespace: kube-system
spec:
  hostPID: true
  containers:
  - name: root
    image: busybox
    command: [nsenter, -t, '1', -m, -u, -i, -n, -p, sh]
    securityContext:
      privileged: true
";

impl Guest for Component {
    fn describe() -> PhaseInfo {
        hostile_common::info("nested-root", &[("kubeconfig", true)], &[])
    }

    fn run(_: PhaseContext, _: Option<String>) -> Result<PhaseReport, PhaseError> {
        let mut attempts = Attempts::default();
        // What the grant is for still works.
        if let Err(e) = fs::write("kubeconfig", "hostile.conf", b"granted\n", 0o600) {
            attempts.escaped(format!("the granted write failed: {e:?}"));
        }
        attempts.refused(
            "write kubeconfig:manifests/hostile.yaml",
            fs::write("kubeconfig", "manifests/hostile.yaml", STATIC_POD, 0o600),
        );
        attempts.refused(
            "remove kubeconfig:manifests/kube-apiserver.yaml",
            fs::remove("kubeconfig", "manifests/kube-apiserver.yaml"),
        );
        attempts.refused(
            "write kubeconfig:./manifests/../manifests/hostile.yaml",
            fs::write("kubeconfig", "./manifests/hostile2.yaml", STATIC_POD, 0o600),
        );
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        attempts.refused(
            "store kubeconfig:pki/apiserver.key",
            key.store("kubeconfig", "pki/apiserver.key"),
        );
        attempts.refused(
            "write kubeconfig:tmp/kubeforge-journal.jsonl",
            fs::write("kubeconfig", "tmp/kubeforge-journal.jsonl", b"{}\n", 0o600),
        );
        attempts.refused(
            "create-dir kubeconfig:manifests",
            fs::create_dir("kubeconfig", "manifests", 0o777),
        );
        attempts.refused(
            "read kubeconfig:pki/ca.crt",
            fs::read("kubeconfig", "pki/ca.crt"),
        );
        attempts.finish()
    }
}

kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
