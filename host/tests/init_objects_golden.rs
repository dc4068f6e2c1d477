//! Every API object `kubeforge init --dry-run` would apply, object for object against those the
//! real kubeadm's `init --dry-run` of each release would create for the same configuration:
//! tests/golden/init-dry-run/v1.<minor>.yaml, which tests/golden/regenerate.sh writes with the
//! real kubeadm of every release kubeforge deploys. For v1.35, whose kubeadm CI does not build,
//! this is the check of the addon objects, RBAC and ConfigMaps; for v1.36 and v1.37 it needs no
//! nodes (the real-node oracle, kubeadm_oracle.rs, compares live clusters of those).
//!
//! Compared after normalising what must differ between two runs — a Secret's values (kubeforge's
//! plan withholds them; the keys are compared), cluster-info's `certificate-authority-data` (each
//! run has its own CA) — and what the API server makes the same on create: `status` (ignored),
//! `metadata.resourceVersion` (assigned; kubeadm's Service template says "0"), an RBAC User or
//! Group subject's `apiGroup` (defaulted to rbac.authorization.k8s.io), and what Go's JSON
//! encoding writes for an unset field of kubeadm's typed objects (`resources: {}` of a
//! container, `readOnly: false` of a volume mount). kubeadm's Node patch (mark-control-plane)
//! is left out: its dry run prints the fake Node it patched, not the patch.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use serde_json::Value;

/// The releases with goldens, and the configuration they were made from.
const RELEASES: [(&str, &str); 3] = [
    (
        "v1.35.4",
        include_str!("../../tests/golden/init-dry-run/v1.35.yaml"),
    ),
    (
        "v1.36.3",
        include_str!("../../tests/golden/init-dry-run/v1.36.yaml"),
    ),
    (
        "v1.37.2",
        include_str!("../../tests/golden/init-dry-run/v1.37.yaml"),
    ),
];
const CONFIG: &str = include_str!("../../tests/golden/init-dry-run/config.yaml");

/// An object by kind, namespace and name, as both outputs name it.
type Objects = BTreeMap<String, Value>;

fn key(object: &Value) -> String {
    let metadata = &object["metadata"];
    match metadata["namespace"].as_str() {
        Some(namespace) => format!(
            "{} {namespace}/{}",
            object["kind"].as_str().unwrap_or_default(),
            metadata["name"].as_str().unwrap_or_default()
        ),
        None => format!(
            "{} {}",
            object["kind"].as_str().unwrap_or_default(),
            metadata["name"].as_str().unwrap_or_default()
        ),
    }
}

/// kubeadm's objects: `--- # <ACTION> <resource>` documents; PATCHes of Nodes left out.
fn kubeadm_objects(golden: &str) -> Objects {
    let mut objects = Objects::new();
    for document in golden.split("--- # ").filter(|d| !d.trim().is_empty()) {
        let (action, body) = document.split_once('\n').expect("a header line");
        if action == "PATCH nodes" {
            continue;
        }
        let object: Value = serde_saphyr::from_str(body)
            .unwrap_or_else(|e| panic!("kubeadm's {action} object: {e}\n{body}"));
        objects.insert(key(&object), normalise(object));
    }
    objects
}

/// kubeforge's objects: each `[dryrun] [<phase>] Would perform action APPLY on …` line followed
/// by the object's YAML, indented four spaces.
fn kubeforge_objects(stdout: &str) -> Objects {
    let mut objects = Objects::new();
    let mut lines = stdout.lines().peekable();
    while let Some(line) = lines.next() {
        if !(line.starts_with("[dryrun] [") && line.contains("] Would perform action APPLY on ")) {
            continue;
        }
        let mut body = String::new();
        while let Some(next) = lines.peek().and_then(|l| l.strip_prefix("    ")) {
            body.push_str(next);
            body.push('\n');
            lines.next();
        }
        let object: Value = serde_saphyr::from_str(&body)
            .unwrap_or_else(|e| panic!("kubeforge's object after {line:?}: {e}\n{body}"));
        if object["kind"] == "Node" {
            continue;
        }
        objects.insert(key(&object), normalise(object));
    }
    objects
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn normalise(mut object: Value) -> Value {
    if let Some(fields) = object.as_object_mut() {
        fields.remove("status");
    }
    if let Some(metadata) = object["metadata"].as_object_mut() {
        metadata.remove("resourceVersion");
    }
    for subject in object["subjects"].as_array_mut().into_iter().flatten() {
        if matches!(subject["kind"].as_str(), Some("User" | "Group"))
            && subject["apiGroup"].is_null()
        {
            subject["apiGroup"] = Value::String(RBAC_GROUP.into());
        }
    }
    let pod = &mut object["spec"]["template"]["spec"];
    for container in pod["containers"].as_array_mut().into_iter().flatten() {
        if container["resources"] == serde_json::json!({})
            && let Some(fields) = container.as_object_mut()
        {
            fields.remove("resources");
        }
        for mount in container["volumeMounts"]
            .as_array_mut()
            .into_iter()
            .flatten()
        {
            if mount["readOnly"] == Value::Bool(false)
                && let Some(fields) = mount.as_object_mut()
            {
                fields.remove("readOnly");
            }
        }
    }
    if object["kind"] == "Secret"
        && let Some(data) = object["data"].as_object_mut()
    {
        for value in data.values_mut() {
            *value = Value::String("<value>".into());
        }
    }
    if key(&object) == "ConfigMap kube-public/cluster-info" {
        let kubeconfig = object["data"]["kubeconfig"].as_str().unwrap_or_default();
        let normalised: String = kubeconfig
            .lines()
            .map(
                |line| match line.split_once("certificate-authority-data: ") {
                    Some((indent, _)) => format!("{indent}certificate-authority-data: <the CA>\n"),
                    None => format!("{line}\n"),
                },
            )
            .collect();
        object["data"]["kubeconfig"] = Value::String(normalised);
    }
    object
}

#[test]
fn init_applies_the_objects_each_releases_kubeadm_creates() {
    let mut differences = Vec::new();
    for (version, golden) in RELEASES {
        let root = tempfile::tempdir().unwrap();
        let config = root.path().join("config.yaml");
        let text = CONFIG.replace(
            "kubernetesVersion: v1.37.2",
            &format!("kubernetesVersion: {version}"),
        );
        assert!(text.contains(version), "the golden config names no version");
        std::fs::write(&config, text).unwrap();
        let output = run(
            Some(root.path()),
            &["init", "--dry-run", "--config", config.to_str().unwrap()],
        );
        output.assert_success(&format!("init --dry-run at {version}"));

        let kubeadm = kubeadm_objects(golden);
        let kubeforge = kubeforge_objects(&output.stdout);
        assert!(
            kubeadm.len() > 20,
            "{version}: {} golden objects",
            kubeadm.len()
        );
        let names: BTreeSet<&String> = kubeadm.keys().chain(kubeforge.keys()).collect();
        for name in names {
            match (kubeadm.get(name), kubeforge.get(name)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => differences.push(format!(
                    "{version} {name}:\n--- kubeadm\n{}\n--- kubeforge\n{}",
                    serde_json::to_string_pretty(a).unwrap(),
                    serde_json::to_string_pretty(b).unwrap()
                )),
                (Some(_), None) => differences.push(format!(
                    "{version} {name}: kubeforge applies no such object"
                )),
                (None, Some(_)) => {
                    differences.push(format!("{version} {name}: kubeadm creates no such object"))
                }
                (None, None) => unreachable!(),
            }
        }
    }
    assert!(
        differences.is_empty(),
        "{} differences:\n\n{}",
        differences.len(),
        differences.join("\n\n")
    );
}
