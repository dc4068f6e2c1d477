//! Fuzz targets for what kubeforge reads through its public API: config files (every config API
//! version, multi-document YAML, PhaseConfiguration), `init`'s flags merged into a config, the
//! lockfile, and what a phase hands the pki capability (certificate specs, certificate PEM,
//! kubeconfig specs and files). The targets for the command line and the kube and node
//! capabilities' inputs are unit tests beside the code they reach (`mod fuzz` in cli/init.rs,
//! capabilities/kube.rs, capabilities/node.rs).
//!
//! Every target must return, within a time and memory bound, and never panic (src/fuzzing.rs);
//! most also check what comes back (errors name the file or field, what is written reads back).
//! CI runs `KUBEFORGE_FUZZ_CASES` inputs per target from a fixed seed; run longer by hand with
//!
//! ```sh
//! KUBEFORGE_FUZZ_CASES=200000 cargo test -p kubeforge --release --lib --test fuzz -- fuzz
//! ```
//!
//! and a `KUBEFORGE_FUZZ_SEED=<number>` of your own to see other inputs. Each input that once
//! failed is a plain test here, named for what went wrong.

#[path = "../src/fuzzing.rs"]
mod fuzzing;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use kubeforge::capabilities::pki::{certs, keys, kubeconfig};
use kubeforge::config::{ConfigError, InitFlags, MigrateOptions, load_init, migrate_config};
use kubeforge::runtime::bindings::kubeforge::phase::pki::{
    CertificateSpec, ExtKeyUsage, KubeconfigSpec,
};
use kubeforge::workflow::Profile;
use kubeforge::workflow::lock::Lockfile;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use rcgen::KeyPair;
use serde_json::{Value, json};

use fuzzing::{ODD_WORDS, alias_bomb, fuzz, json_value, odd_text};

/// Valid and nearly valid config files: the seeds of the config targets.
const SEED_FILES: [&str; 6] = [
    include_str!("configs/every-kind.yaml"),
    include_str!("configs/custom.yaml"),
    include_str!("configs/ipv6.yaml"),
    include_str!("configs/unknown-field.yaml"),
    include_str!("configs/invalid-cert-san.yaml"),
    include_str!("../../examples/init.yaml"),
];

/// One change to a JSON document, at the node its position picks in pre-order.
#[derive(Debug, Clone)]
enum Edit {
    Replace(Index, Value),
    RemoveChild(Index, Index),
    /// The key is one the seeds use, so known fields turn up in the wrong places too.
    InsertChild(Index, String, Value),
}

fn edit(keys: Vec<String>) -> impl Strategy<Value = Edit> {
    let key = prop_oneof![select(keys), odd_text()];
    prop_oneof![
        (any::<Index>(), json_value()).prop_map(|(at, value)| Edit::Replace(at, value)),
        (any::<Index>(), any::<Index>()).prop_map(|(at, child)| Edit::RemoveChild(at, child)),
        (any::<Index>(), key, json_value())
            .prop_map(|(at, key, value)| Edit::InsertChild(at, key, value)),
    ]
}

fn node_count(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(node_count).sum(),
        Value::Object(fields) => fields.values().map(node_count).sum(),
        _ => 0,
    }
}

/// The node at pre-order `position` (which must be below `node_count`).
fn node_at(value: &mut Value, position: usize) -> &mut Value {
    if position == 0 {
        return value;
    }
    let mut skipped = 1;
    let children: Vec<&mut Value> = match value {
        Value::Array(items) => items.iter_mut().collect(),
        Value::Object(fields) => fields.values_mut().collect(),
        _ => unreachable!("position {position} is past a scalar"),
    };
    for child in children {
        let size = node_count(child);
        if position < skipped + size {
            return node_at(child, position - skipped);
        }
        skipped += size;
    }
    unreachable!("position {position} is past the document")
}

fn apply_edit(document: &mut Value, edit: &Edit) {
    let position = |at: &Index| at.index(node_count(document));
    match edit {
        Edit::Replace(at, value) => *node_at(document, position(at)) = value.clone(),
        Edit::RemoveChild(at, child) => match node_at(document, position(at)) {
            Value::Array(items) if !items.is_empty() => {
                items.remove(child.index(items.len()));
            }
            Value::Object(fields) if !fields.is_empty() => {
                let key = fields.keys().nth(child.index(fields.len())).cloned();
                fields.remove(&key.expect("an index below the length"));
            }
            _ => {}
        },
        Edit::InsertChild(at, key, value) => match node_at(document, position(at)) {
            Value::Array(items) => items.push(value.clone()),
            Value::Object(fields) => {
                fields.insert(key.clone(), value.clone());
            }
            _ => {}
        },
    }
}

/// The documents of the seed files, split the way Kubernetes splits them.
fn seed_documents() -> Vec<Value> {
    SEED_FILES
        .iter()
        .flat_map(|file| file.split("\n---\n"))
        .map(|text| serde_saphyr::from_str(text).expect("a seed document is YAML"))
        .collect()
}

fn keys_of(value: &Value, keys: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| keys_of(item, keys)),
        Value::Object(fields) => {
            for (key, field) in fields {
                keys.push(key.clone());
                keys_of(field, keys);
            }
        }
        _ => {}
    }
}

/// `apiVersion`s a config file may name: current, old, other groups, unknown.
const API_VERSIONS: [&str; 9] = [
    "kubeadm.k8s.io/v1beta4",
    "kubeadm.k8s.io/v1beta3",
    "kubeadm.k8s.io/v1",
    "kubelet.config.k8s.io/v1beta1",
    "kubeproxy.config.k8s.io/v1alpha1",
    "kubeforge.dev/v1alpha1",
    "kubeforge.dev/v1",
    "v1",
    "",
];

const KINDS: [&str; 10] = [
    "InitConfiguration",
    "ClusterConfiguration",
    "KubeletConfiguration",
    "KubeProxyConfiguration",
    "PhaseConfiguration",
    "JoinConfiguration",
    "ResetConfiguration",
    "UpgradeConfiguration",
    "ConfigMap",
    "",
];

/// One document of a generated config file: a seed document, edited, then written out.
#[derive(Debug, Clone)]
struct GeneratedDocument {
    seed: Index,
    edits: Vec<Edit>,
    type_fields: Option<(&'static str, &'static str)>,
    /// As YAML the way kubeforge writes it, else as JSON (which is YAML too).
    as_yaml: bool,
}

fn generated_document(keys: Vec<String>) -> impl Strategy<Value = GeneratedDocument> {
    (
        any::<Index>(),
        prop::collection::vec(edit(keys), 0..4),
        prop::option::weighted(0.3, (select(&API_VERSIONS[..]), select(&KINDS[..]))),
        any::<bool>(),
    )
        .prop_map(|(seed, edits, type_fields, as_yaml)| GeneratedDocument {
            seed,
            edits,
            type_fields,
            as_yaml,
        })
}

fn render_document(seeds: &[Value], generated: &GeneratedDocument) -> String {
    let mut document = generated.seed.get(seeds).clone();
    for edit in &generated.edits {
        apply_edit(&mut document, edit);
    }
    if let (Some((api_version, kind)), Value::Object(fields)) =
        (generated.type_fields, &mut document)
    {
        fields.insert("apiVersion".into(), api_version.into());
        fields.insert("kind".into(), kind.into());
    }
    if generated.as_yaml {
        kubeforge_api::yaml::to_string(&document)
    } else {
        format!("{document}\n")
    }
}

/// Lines that end a document, as Kubernetes' reader sees them.
const SEPARATORS: [&str; 3] = ["---\n", "--- # next\n", "---\n---\n"];

/// Loads `text` as `--config` from `path`, and the profile and effective config the run would
/// build from it; checks that an error says which file or field is at fault.
fn load_config_file(path: &Path, text: &[u8]) {
    std::fs::write(path, text).expect("writing the config file");
    match load_init(Some(path), &InitFlags::default()) {
        Ok(loaded) => {
            serde_json::to_string(&loaded.effective).expect("the effective config is JSON");
            let _ = Profile::load(loaded.phase_configuration.as_ref(), Some(path));
        }
        Err(error) => assert_names_its_cause(&error, Some(path)),
    }
}

/// Migrates the config file at `path` as `config migrate` does, every API version allowed
/// (which reads, defaults and validates every kubeadm kind, as `config validate` does too);
/// checks that an error says which file or field is at fault.
fn migrate_config_file(path: &Path) {
    let options = MigrateOptions {
        allow_experimental_api: true,
        ..Default::default()
    };
    if let Err(error) = migrate_config(path, &options) {
        assert_names_its_cause(&error, Some(path));
    }
}

/// The message of a config error is what the user acts on: it names the file (or the flag, or
/// every invalid field) and says something about it.
fn assert_names_its_cause(error: &ConfigError, file: Option<&Path>) {
    let message = error.to_string();
    let explained = match error {
        ConfigError::Invalid(problems)
        | ConfigError::InvalidKind {
            errors: problems, ..
        } => problems
            .iter()
            .all(|problem| !problem.field.is_empty() && !problem.detail.is_empty()),
        ConfigError::Flag { reason, .. } => !reason.is_empty(),
        ConfigError::Detection(why) => !why.is_empty(),
        ConfigError::MixedArguments(flags) => !flags.is_empty(),
        ConfigError::Yaml { message, .. } | ConfigError::Document { message, .. } => {
            !message.is_empty()
        }
        ConfigError::Read { .. } | ConfigError::NoKubeadmDocument { .. } => true,
    };
    assert!(explained, "an error that explains nothing: {message}");
    if let (
        ConfigError::Read { .. }
        | ConfigError::Yaml { .. }
        | ConfigError::Document { .. }
        | ConfigError::InvalidKind { .. }
        | ConfigError::NoKubeadmDocument { .. },
        Some(file),
    ) = (error, file)
    {
        assert!(
            message.contains(&file.display().to_string()),
            "the error does not name the file: {message}"
        );
    }
}

fn scratch_file(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a scratch directory");
    let path = dir.path().join(name);
    (dir, path)
}

#[test]
fn every_kind_seed_loads() {
    let (_dir, path) = scratch_file("kubeadm.yaml");
    std::fs::write(&path, SEED_FILES[0]).unwrap();
    let loaded = load_init(Some(&path), &InitFlags::default()).unwrap();
    assert!(loaded.effective.kubelet.is_some() && loaded.effective.kube_proxy.is_some());
    Profile::load(loaded.phase_configuration.as_ref(), Some(&path)).unwrap();
}

/// YAML's and kubeadm's tokens, for text that gets past the first few bytes of the parser.
fn yaml_token_soup() -> impl Strategy<Value = String> {
    let mut tokens: Vec<String> = [
        "apiVersion: ",
        "kind: ",
        "\n",
        "  ",
        "- ",
        ": ",
        "---\n",
        "&a ",
        "*a",
        "<<: *a",
        "? ",
        "!!str ",
        "!!int ",
        "!tag ",
        "|\n",
        ">-\n",
        "[",
        "{",
        "}",
        ", ",
        "%YAML 1.2\n",
        "...\n",
    ]
    .into_iter()
    .map(String::from)
    .chain(
        API_VERSIONS
            .iter()
            .chain(&KINDS)
            .map(|word| word.to_string()),
    )
    .chain(ODD_WORDS.iter().map(|word| word.to_string()))
    .collect();
    keys_of(&Value::Array(seed_documents()), &mut tokens);
    prop::collection::vec(select(tokens), 0..200).prop_map(|tokens| tokens.concat())
}

/// A seed file with bytes inserted, removed or repeated: broken indentation, cut documents.
fn edited_seed_file() -> impl Strategy<Value = String> {
    let change = (any::<Index>(), any::<Index>(), 0..3u8, odd_text());
    (select(&SEED_FILES[..]), prop::collection::vec(change, 1..6)).prop_map(|(seed, changes)| {
        let mut text = seed.to_owned();
        for (at, length, how, inserted) in changes {
            let start = text.floor_char_boundary(at.index(text.len() + 1));
            let end = text.floor_char_boundary(start + length.index(40));
            match how {
                0 => text.insert_str(start, &inserted),
                1 => text.replace_range(start..end, ""),
                _ => {
                    let repeated = text[start..end].to_owned();
                    text.insert_str(end, &repeated);
                }
            }
        }
        text
    })
}

#[test]
fn fuzz_config_file_text() {
    let (dir, path) = scratch_file("kubeadm.yaml");
    let inputs = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..2048),
        yaml_token_soup().prop_map(String::into_bytes),
        edited_seed_file().prop_map(String::into_bytes),
    ];
    fuzz(inputs, move |text| load_config_file(&path, &text));
    drop(dir);
}

#[test]
fn fuzz_config_file_documents() {
    let (dir, path) = scratch_file("kubeadm.yaml");
    let seeds = seed_documents();
    let mut keys = Vec::new();
    keys_of(&Value::Array(seeds.clone()), &mut keys);
    let inputs = (
        prop::collection::vec((generated_document(keys), select(&SEPARATORS[..])), 0..6),
        any::<bool>(),
    );
    fuzz(inputs, move |(documents, leading_separator)| {
        let mut text = String::from(if leading_separator { "---\n" } else { "" });
        for (document, separator) in &documents {
            text.push_str(&render_document(&seeds, document));
            text.push_str(separator);
        }
        load_config_file(&path, text.as_bytes());
        migrate_config_file(&path);
    });
    drop(dir);
}

/// Shapes that cost a parser more than their size: nesting, long scalars, many keys or
/// documents, and aliases that expand ("billion laughs").
#[derive(Debug, Clone)]
enum Hostile {
    FlowNesting {
        depth: usize,
    },
    BlockNesting {
        depth: usize,
    },
    LongScalar {
        length: usize,
    },
    ManyKeys {
        count: usize,
    },
    /// `levels` anchors, each a list of `fanout` aliases of the one before.
    AliasBomb {
        fanout: usize,
        levels: usize,
    },
}

/// Hostile shapes, mostly of sizes a debug build parses in milliseconds, sometimes past the
/// loader's budget of values.
fn hostile() -> impl Strategy<Value = Hostile> {
    let key_count = prop_oneof![9 => 1..2_000usize, 1 => 15_000..25_000usize];
    prop_oneof![
        (1..400usize).prop_map(|depth| Hostile::FlowNesting { depth }),
        (1..400usize).prop_map(|depth| Hostile::BlockNesting { depth }),
        (1..MAX_FILE_BYTES).prop_map(|length| Hostile::LongScalar { length }),
        key_count.prop_map(|count| Hostile::ManyKeys { count }),
        (2..12usize, 1..10usize).prop_map(|(fanout, levels)| Hostile::AliasBomb { fanout, levels }),
    ]
}

impl Hostile {
    /// The shape as the value of a mapping key: what follows `key:` up to the end of the line,
    /// then any more lines, indented.
    fn as_value(&self) -> String {
        match *self {
            Hostile::FlowNesting { depth } => {
                format!(" {}x{}\n", "[".repeat(depth), "]".repeat(depth))
            }
            Hostile::BlockNesting { depth } => (1..=depth)
                .map(|level| format!("\n{}a:", "  ".repeat(level)))
                .chain(["x\n".to_string()])
                .collect::<Vec<_>>()
                .join(""),
            Hostile::LongScalar { length } => format!(" {}\n", "x".repeat(length)),
            Hostile::ManyKeys { count } => {
                (0..count)
                    .map(|key| format!("\n  k{key}: v"))
                    .collect::<String>()
                    + "\n"
            }
            Hostile::AliasBomb { fanout, levels } => format!("\n{}", alias_bomb(fanout, levels)),
        }
    }
}

/// The largest file a hostile shape makes: a hundred times larger than any real config file.
const MAX_FILE_BYTES: usize = 256 << 10;

/// Keys a hostile value is put under: typed fields of every kind, a field of an opaque
/// component config, and unknown ones.
const HOSTILE_FIELDS: [&str; 7] = [
    "nodeRegistration",
    "clusterName",
    "apiServer",
    "phases",
    "evictionHard",
    "discovery",
    "unknownField",
];

#[test]
fn fuzz_config_file_hostile() {
    let (dir, path) = scratch_file("kubeadm.yaml");
    let document = (
        select(&API_VERSIONS[..]),
        select(&KINDS[..]),
        select(&HOSTILE_FIELDS[..]),
        hostile(),
    );
    let inputs = (
        prop::collection::vec(document, 1..4),
        prop_oneof![3 => Just(1usize), 1 => 1..2000usize],
    );
    fuzz(inputs, move |(documents, repeats)| {
        let documents: String = documents
            .iter()
            .map(|(api_version, kind, field, value)| {
                format!(
                    "apiVersion: {api_version}\nkind: {kind}\n{field}:{}---\n",
                    value.as_value()
                )
            })
            .collect();
        let file = documents.repeat(repeats.min(MAX_FILE_BYTES / documents.len()).max(1));
        load_config_file(&path, file.as_bytes());
    });
    drop(dir);
}

fn load_error(text: &str) -> String {
    let (_dir, path) = scratch_file("kubeadm.yaml");
    std::fs::write(&path, text).unwrap();
    match load_init(Some(&path), &InitFlags::default()) {
        Ok(_) => panic!("loaded:\n{text}"),
        Err(error) => error.to_string(),
    }
}

/// Found by `fuzz_config_file_hostile`: a 345-byte file of nested aliases expanded to 78 125
/// values, held at once in 76 MiB.
#[test]
fn config_alias_bomb_is_refused() {
    let bomb = Hostile::AliasBomb {
        fanout: 5,
        levels: 7,
    };
    let message = load_error(&format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nnodeRegistration:{}",
        bomb.as_value()
    ));
    assert!(
        message.contains("document 1: the file reaches more than 20000 YAML values"),
        "{message}"
    );
}

/// Found by `fuzz_config_file_hostile`: each document had the parser's whole budget, and
/// `init` reads past the kinds it ignores, so a file of alias bombs each within that budget
/// cost one bomb per document (100 documents of 59 000 values in 37 KB: 7.6 s in a release
/// build). Now the file stops at its budget of values.
#[test]
fn config_documents_share_one_budget() {
    let bomb = Hostile::AliasBomb {
        fanout: 9,
        levels: 3,
    };
    let document = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:{}---\n",
        bomb.as_value()
    );
    let message = load_error(&document.repeat(1000));
    assert!(
        message.contains("document 12: the file reaches more than 20000 YAML values"),
        "{message}"
    );
}

#[test]
fn config_aliases_within_the_budget_load() {
    let (_dir, path) = scratch_file("kubeadm.yaml");
    std::fs::write(
        &path,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  \
         advertiseAddress: 10.0.0.10\nnodeRegistration:\n  name: cp-1\n---\n\
         apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\napiServer:\n  \
         certSANs: &names [lb.example.com, 10.0.0.100]\netcd:\n  local:\n    \
         serverCertSANs: *names\n",
    )
    .unwrap();
    let loaded = load_init(Some(&path), &InitFlags::default()).unwrap();
    let etcd = loaded.effective.cluster.etcd.local.expect("local etcd");
    assert_eq!(etcd.server_cert_sans, ["lb.example.com", "10.0.0.100"]);
}

#[test]
fn fuzz_init_flags() {
    let text = || prop::option::weighted(0.5, odd_text());
    let list = || prop::collection::vec(odd_text(), 0..3);
    let inputs = (
        (text(), text(), any::<Option<u16>>(), list(), text(), text()),
        (text(), text(), text(), text(), text(), text()),
        (text(), text(), text(), text(), text(), list(), list()),
        any::<bool>(),
    );
    fuzz(inputs, |(first, second, third, dry_run)| {
        let flags = InitFlags {
            kubernetes_version: first.0,
            apiserver_advertise_address: first.1,
            apiserver_bind_port: first.2,
            apiserver_cert_extra_sans: first.3,
            control_plane_endpoint: first.4,
            node_name: first.5,
            service_cidr: second.0,
            pod_network_cidr: second.1,
            service_dns_domain: second.2,
            cert_dir: second.3,
            cri_socket: second.4,
            image_repository: second.5,
            feature_gates: third.0,
            token: third.1,
            token_ttl: third.2,
            certificate_key: third.3,
            patches: third.4,
            ignore_preflight_errors: third.5,
            skip_phases: third.6,
            dry_run,
        };
        match load_init(None, &flags) {
            Ok(loaded) => {
                serde_json::to_string(&loaded.effective).expect("the effective config is JSON");
            }
            Err(error) => assert_names_its_cause(&error, None),
        }
    });
}

fn lockfile_seed() -> Value {
    json!({
        "apiVersion": "kubeforge.dev/v1alpha1",
        "kind": "ComponentLock",
        "components": [
            {
                "slot": "addon/metrics-server",
                "component": "file:metrics-server.wasm",
                "digest": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                "grant": {
                    "fs": [{"root": "manifests", "access": "read-write"}],
                    "pki": {"sign": ["ca"], "create": ["front-proxy-ca"], "seal": true},
                    "kube": [{
                        "verbs": ["apply"],
                        "resources": ["apps/deployments"],
                        "namespaces": ["kube-system"],
                    }],
                    "node": {"paths": ["/etc/x"], "services": ["kubelet"], "probes": ["https://*/livez"]},
                },
            },
            {"slot": "addon/coredns", "component": "builtin:coredns", "digest": "sha256:00"},
        ],
    })
}

#[test]
fn fuzz_lockfile() {
    let (dir, path) = scratch_file("kubeforge.lock.yaml");
    let seed = lockfile_seed();
    let mut keys = Vec::new();
    keys_of(&seed, &mut keys);
    let edited = (prop::collection::vec(edit(keys), 0..5), any::<bool>()).prop_map(
        move |(edits, as_yaml)| {
            let mut lock = seed.clone();
            for edit in &edits {
                apply_edit(&mut lock, edit);
            }
            if as_yaml {
                kubeforge_api::yaml::to_string(&lock).into_bytes()
            } else {
                lock.to_string().into_bytes()
            }
        },
    );
    let inputs = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..1024),
        1 => yaml_token_soup().prop_map(String::into_bytes),
        1 => alias_bomb_under("apiVersion: kubeforge.dev/v1alpha1\nkind: ComponentLock\ncomponents: []\nextra:\n"),
        3 => edited,
    ];
    fuzz(inputs, move |text| {
        std::fs::write(&path, text).expect("writing the lockfile");
        match Lockfile::read(&path) {
            Ok(lock) => assert!(lock.is_some(), "a lockfile that exists is read"),
            Err(error) => {
                let message = format!("{error:#}");
                assert!(
                    message.contains(&path.display().to_string()),
                    "the error does not name the lockfile: {message}"
                );
            }
        }
    });
    drop(dir);
}

/// `document`, ending in a key, with an alias bomb of up to a million values as its value.
fn alias_bomb_under(document: &'static str) -> impl Strategy<Value = Vec<u8>> {
    (2..12usize, 1..7usize).prop_map(move |(fanout, levels)| {
        format!("{document}{}", alias_bomb(fanout, levels)).into_bytes()
    })
}

/// DNS names as a phase may ask for them: valid, wildcard, or anything.
fn dns_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?(\\.[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?){0,3}",
        "\\*\\.[a-z]{1,8}\\.example",
        odd_text(),
    ]
}

/// IP addresses as text: any v4 or v6 address, or something that is not one.
fn ip_address() -> impl Strategy<Value = String> {
    prop_oneof![any::<IpAddr>().prop_map(|ip| ip.to_string()), odd_text(),]
}

/// Validity periods from none to past what any date type holds.
fn validity_seconds() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=100 * 365 * 86_400u64,
        any::<u64>(),
        select(vec![0, 1, u64::MAX, i64::MAX as u64, 1 << 40]),
    ]
}

fn certificate_spec() -> impl Strategy<Value = CertificateSpec> {
    let usage = prop_oneof![Just(ExtKeyUsage::ServerAuth), Just(ExtKeyUsage::ClientAuth)];
    (
        odd_text(),
        prop::collection::vec(odd_text(), 0..3),
        prop::collection::vec(dns_name(), 0..5),
        prop::collection::vec(ip_address(), 0..4),
        prop::collection::vec(usage, 0..3),
        validity_seconds(),
    )
        .prop_map(
            |(common_name, organizations, dns_names, ip_addresses, ext_key_usages, validity)| {
                CertificateSpec {
                    common_name,
                    organizations,
                    dns_names,
                    ip_addresses,
                    ext_key_usages,
                    validity_seconds: validity,
                }
            },
        )
}

/// A CA as the pki capability holds one: its key stays on the host.
struct TestAuthority {
    key: KeyPair,
    certificate_pem: String,
}

fn test_authority(started: SystemTime) -> TestAuthority {
    let key = KeyPair::generate().expect("a CA key");
    let spec = CertificateSpec {
        common_name: "kubernetes".into(),
        organizations: Vec::new(),
        dns_names: vec!["kubernetes".into()],
        ip_addresses: Vec::new(),
        ext_key_usages: Vec::new(),
        validity_seconds: 86_400,
    };
    let certificate_pem = certs::self_sign_ca(&spec, &key, started).expect("a CA certificate");
    TestAuthority {
        key,
        certificate_pem,
    }
}

/// A certificate kubeforge issued says what its spec asked for, and chains to its CA.
fn assert_issued_as_asked(pem: &str, spec: &CertificateSpec, ca_pem: &str) {
    let info = certs::inspect(pem).expect("an issued certificate reads back");
    assert_eq!(info.common_name, spec.common_name);
    assert_eq!(info.organizations, spec.organizations);
    assert_eq!(info.dns_names, spec.dns_names);
    let addresses: Vec<String> = spec
        .ip_addresses
        .iter()
        .map(|ip| ip.parse::<IpAddr>().expect("issued, so valid").to_string())
        .collect();
    assert_eq!(info.ip_addresses, addresses);
    for usage in [ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth] {
        assert_eq!(
            spec.ext_key_usages.contains(&usage),
            info.ext_key_usages.contains(&usage),
            "{usage:?}"
        );
    }
    certs::summary(pem).expect("an issued certificate has a summary");
    // Still valid now unless the spec asked for next to nothing.
    if spec.validity_seconds > 3600 {
        certs::verify(pem, ca_pem).expect("an issued certificate verifies with its CA");
    }
}

#[test]
fn fuzz_certificate_spec() {
    let started = SystemTime::now();
    let authority = Arc::new(test_authority(started));
    let key = Arc::new(KeyPair::generate().expect("a key"));
    fuzz(certificate_spec(), move |spec| {
        match certs::self_sign_ca(&spec, &key, started) {
            Ok(pem) => assert_issued_as_asked(&pem, &spec, &pem),
            Err(error) => assert!(!format!("{error:#}").is_empty()),
        }
        match certs::sign(
            &spec,
            &key,
            &authority.certificate_pem,
            &authority.key,
            started,
        ) {
            Ok(pem) => assert_issued_as_asked(&pem, &spec, &authority.certificate_pem),
            Err(error) => assert!(!format!("{error:#}").is_empty()),
        }
    });
}

fn minimal_spec(organizations: &[&str], validity_seconds: u64) -> CertificateSpec {
    CertificateSpec {
        common_name: String::new(),
        organizations: organizations.iter().map(|o| o.to_string()).collect(),
        dns_names: Vec::new(),
        ip_addresses: Vec::new(),
        ext_key_usages: Vec::new(),
        validity_seconds,
    }
}

/// Found by `fuzz_certificate_spec`: `certs::params` panicked ("overflow adding duration to
/// date") on a validity past the year 9999, which a phase can ask for: the panic took the host
/// down.
#[test]
fn certificate_validity_past_the_year_9999_is_refused() {
    let key = KeyPair::generate().unwrap();
    for validity in [251_606_071_694, i64::MAX as u64, u64::MAX] {
        let error = certs::self_sign_ca(&minimal_spec(&[], validity), &key, SystemTime::now())
            .expect_err("no certificate ends after 9999");
        assert!(
            format!("{error:#}").contains("after the year 9999"),
            "{error:#}"
        );
    }
}

/// Found by `fuzz_certificate_spec`: organizations `["", ""]` read back as `[""]`. rcgen keeps
/// one value per name attribute, so every organization but the last was dropped, silently:
/// a certificate named fewer groups than the phase asked for.
#[test]
fn certificate_with_two_organizations_is_refused() {
    let key = KeyPair::generate().unwrap();
    let spec = minimal_spec(&["system:nodes", "other"], 3600);
    let error = certs::self_sign_ca(&spec, &key, SystemTime::now()).unwrap_err();
    assert!(
        format!("{error:#}").contains("one organization"),
        "{error:#}"
    );
}

/// Found by `fuzz_certificate_spec` (in 20 000 cases): a common name `"?"` panicked in the
/// DER writer (yasna: "Invalid PrintableString: 63 appeared"), which took the host down.
#[test]
fn certificate_names_with_a_question_mark_are_issued() {
    let key = KeyPair::generate().unwrap();
    let mut spec = minimal_spec(&["who?"], 3600);
    spec.common_name = "?".into();
    let pem = certs::self_sign_ca(&spec, &key, SystemTime::now()).unwrap();
    let info = certs::inspect(&pem).unwrap();
    assert_eq!(
        (info.common_name.as_str(), info.organizations),
        ("?", vec!["who?".into()])
    );
}

/// PEM text a phase may hand over as a certificate: real certificates with damaged DER, random
/// DER, chains of those, and arbitrary text.
fn certificate_pem(real: Vec<Vec<u8>>) -> impl Strategy<Value = String> {
    let damaged = (
        select(real),
        prop::collection::vec((any::<Index>(), any::<u8>()), 0..8),
        prop::option::of(any::<Index>()),
    )
        .prop_map(|(mut der, flips, cut)| {
            for (at, byte) in flips {
                let at = at.index(der.len());
                der[at] = byte;
            }
            if let Some(cut) = cut {
                der.truncate(cut.index(der.len() + 1));
            }
            keys::pem_encode("CERTIFICATE", &der)
        });
    let random = prop::collection::vec(any::<u8>(), 0..600)
        .prop_map(|der| keys::pem_encode("CERTIFICATE", &der));
    let block = prop_oneof![4 => damaged, 1 => random, 1 => odd_text()];
    prop::collection::vec(block, 1..4).prop_map(|blocks| blocks.concat())
}

#[test]
fn fuzz_certificate_pem() {
    let started = SystemTime::now();
    let authority = Arc::new(test_authority(started));
    let key = Arc::new(KeyPair::generate().expect("a key"));
    let leaf_spec = CertificateSpec {
        common_name: "kube-apiserver".into(),
        organizations: vec!["system:masters".into()],
        dns_names: vec!["kubernetes.default.svc".into()],
        ip_addresses: vec!["10.96.0.1".into(), "fd00::1".into()],
        ext_key_usages: vec![ExtKeyUsage::ServerAuth, ExtKeyUsage::ClientAuth],
        validity_seconds: 86_400,
    };
    let leaf = certs::sign(
        &leaf_spec,
        &key,
        &authority.certificate_pem,
        &authority.key,
        started,
    )
    .expect("a leaf certificate");
    let real = [&leaf, &authority.certificate_pem]
        .iter()
        .flat_map(|pem| certs::certificates_der(pem).expect("DER"))
        .collect();
    fuzz(certificate_pem(real), move |pem| {
        if certs::inspect(&pem).is_ok() {
            certs::summary(&pem).expect("a certificate that inspects has a summary");
        }
        let _ = certs::verify(&pem, &authority.certificate_pem);
        let _ = certs::key_matches(&pem, &key);
        let _ = certs::public_key_pin(&pem);
    });
}

fn kubeconfig_spec() -> impl Strategy<Value = KubeconfigSpec> {
    (odd_text(), odd_text(), odd_text(), odd_text(), odd_text()).prop_map(
        |(cluster_name, server, certificate_authority_pem, user_name, client_certificate_pem)| {
            KubeconfigSpec {
                cluster_name,
                server,
                certificate_authority_pem,
                user_name,
                client_certificate_pem,
            }
        },
    )
}

fn client_key_pem() -> String {
    keys::to_pem(&KeyPair::generate().expect("a key")).expect("the key as PEM")
}

/// Found by `fuzz_kubeconfig_spec` (in 20 000 cases): a server `"\u{2028}￼"` read back as
/// `"\u{2028}      ￼"`. The writer, like client-go's, breaks the line at U+2028 and indents;
/// kubeforge's reader takes U+2028 for text and keeps the indentation.
#[test]
fn kubeconfig_names_with_line_separators_are_refused() {
    let spec = KubeconfigSpec {
        cluster_name: String::new(),
        server: "\u{2028}\u{fffc}".into(),
        certificate_authority_pem: String::new(),
        user_name: String::new(),
        client_certificate_pem: String::new(),
    };
    let error = kubeconfig::render(&spec, &client_key_pem()).unwrap_err();
    assert!(format!("{error:#}").contains("line separator"), "{error:#}");
}

#[test]
fn fuzz_kubeconfig_spec() {
    let key_pem = client_key_pem();
    fuzz(kubeconfig_spec(), move |spec| {
        let Ok(text) = kubeconfig::render(&spec, &key_pem) else {
            let separator = ['\u{85}', '\u{2028}', '\u{2029}'];
            assert!(
                [&spec.cluster_name, &spec.server, &spec.user_name]
                    .iter()
                    .any(|name| name.contains(separator)),
                "only a name with a line separator is refused"
            );
            return;
        };
        let read = kubeconfig::inspect(&text)
            .unwrap_or_else(|error| panic!("a rendered kubeconfig reads back: {error:#}\n{text}"));
        assert_eq!(
            (
                &read.cluster_name,
                &read.server,
                &read.certificate_authority_pem,
                &read.user_name,
                &read.client_certificate_pem,
            ),
            (
                &spec.cluster_name,
                &spec.server,
                &spec.certificate_authority_pem,
                &spec.user_name,
                &spec.client_certificate_pem,
            ),
            "the kubeconfig reads back as written:\n{text}"
        );
    });
}

#[test]
fn fuzz_kubeconfig_file() {
    let key_pem = client_key_pem();
    let spec = KubeconfigSpec {
        cluster_name: "kubernetes".into(),
        server: "https://10.0.0.10:6443".into(),
        certificate_authority_pem: "-----BEGIN CERTIFICATE-----\n".into(),
        user_name: "kubernetes-admin".into(),
        client_certificate_pem: "-----BEGIN CERTIFICATE-----\n".into(),
    };
    let seed = kubeconfig::render(&spec, &key_pem).expect("a kubeconfig");
    let edited =
        (prop::collection::vec((any::<Index>(), odd_text()), 1..6)).prop_map(move |changes| {
            let mut text = seed.clone();
            for (at, inserted) in changes {
                let at = text.floor_char_boundary(at.index(text.len() + 1));
                text.insert_str(at, &inserted);
            }
            text
        });
    let inputs = prop_oneof![
        3 => edited,
        1 => yaml_token_soup(),
        1 => alias_bomb_under("apiVersion: v1\nkind: Config\npreferences:\n")
            .prop_map(|bytes| String::from_utf8(bytes).expect("YAML text")),
        1 => prop::collection::vec(any::<u8>(), 0..1024)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ];
    fuzz(inputs, |text| {
        let _ = kubeconfig::inspect(&text);
    });
}

/// Found by `fuzz_kubeconfig_file`: the parser expanded the aliases of a field the reader
/// ignores, up to its own budget of 250 000 values: 58 MiB and 1.7 s (debug build) for a
/// file of a few hundred bytes, which a phase that may write kubeconfigs can leave for others.
#[test]
fn kubeconfig_alias_bomb_is_refused() {
    let text = format!(
        "apiVersion: v1\nkind: Config\npreferences:\n{}",
        alias_bomb(10, 6)
    );
    let error = kubeconfig::inspect(&text).expect_err("the bomb was read");
    assert!(format!("{error:#}").contains("budget"), "{error:#}");
}
