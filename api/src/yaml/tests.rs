use serde_json::{Value, json};

use super::to_string;

/// Inputs and the bytes `sigs.k8s.io/yaml.JSONToYAML` v1.6.0 (go-yaml v2.4.3) wrote for them:
/// quoting of every kind of scalar, folding at column 80, key order, nesting, empty collections.
/// (Raw U+0085 in a string is left out: go-yaml's *parser* folds it into a space when it reads
/// the JSON, which is not the emitter's doing.)
#[test]
fn matches_sigs_k8s_io_yaml_byte_for_byte() {
    let cases: Vec<Value> = serde_json::from_str(include_str!("go_yaml_cases.json")).unwrap();
    assert!(cases.len() > 200);
    let mut failures = Vec::new();
    for case in &cases {
        let (input, expected) = (
            case["json"].as_str().unwrap(),
            case["yaml"].as_str().unwrap(),
        );
        let ours = to_string(&serde_json::from_str(input).unwrap());
        if ours != expected {
            failures.push(format!(
                "input {input}\n--- go-yaml\n{expected}--- ours\n{ours}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn quotes_strings_that_would_read_as_other_types() {
    let yaml =
        to_string(&json!({"a": "true", "b": "10", "c": "", "d": "x: y", "e": "*x", "f": "plain"}));
    assert_eq!(
        yaml,
        "a: \"true\"\nb: \"10\"\nc: \"\"\nd: 'x: y'\ne: '*x'\nf: plain\n"
    );
}

#[test]
fn sequences_under_a_key_are_not_indented() {
    let yaml = to_string(
        &json!({"spec": {"containers": [{"command": ["etcd", "--name=a"], "name": "etcd"}]}}),
    );
    assert_eq!(
        yaml,
        "spec:\n  containers:\n  - command:\n    - etcd\n    - --name=a\n    name: etcd\n"
    );
}

#[test]
fn empty_collections_are_written_in_flow_style() {
    assert_eq!(
        to_string(&json!({"status": {}, "list": []})),
        "list: []\nstatus: {}\n"
    );
    assert_eq!(to_string(&json!({})), "{}\n");
}
