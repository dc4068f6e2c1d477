//! The cost of running a phase component, apart from the phase's own work: loading it from the
//! warm artifact cache, and instantiating it plus one call (`describe`).
//!
//! `cargo bench -p kubeforge --bench phase_overhead`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use kubeforge::capabilities::{HostContext, Roots};
use kubeforge::effects::Effects;
use kubeforge::runtime::Runtime;
use kubeforge::workflow::stock;

fn phase_overhead(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("temporary cache directory");
    let runtime = Runtime::new(Some(cache.path().to_path_buf())).expect("runtime");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let host = Arc::new(HostContext {
        roots: Roots::default(),
        effects: Effects::plan(),
        node_root: PathBuf::from("/nonexistent"),
        started: SystemTime::now(),
        kube: Default::default(),
    });
    for name in ["certs", "etcd"] {
        let wasm = stock::component(name).expect("stock component");
        // The first load compiles and fills the cache; the measured loads deserialize.
        let loaded = runtime.load(name, wasm).expect("load");
        c.bench_function(&format!("{name}: load from warm cache"), |b| {
            b.iter(|| runtime.load(name, wasm).expect("load"))
        });
        c.bench_function(&format!("{name}: instantiate + describe"), |b| {
            b.iter(|| {
                tokio
                    .block_on(runtime.describe(&loaded, host.clone()))
                    .expect("describe")
            })
        });
    }
}

criterion_group!(benches, phase_overhead);
criterion_main!(benches);
