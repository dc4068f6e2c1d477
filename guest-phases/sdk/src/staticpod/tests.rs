use kubeforge_api::Duration;
use kubeforge_api::v1beta4::{Arg, EnvVar};
use serde_json::json;

use super::*;

fn arg(name: &str, value: &str) -> Arg {
    Arg {
        name: name.into(),
        value: value.into(),
    }
}

#[test]
fn defaults_are_sorted_and_user_arguments_follow_in_their_order() {
    let defaults = vec![
        arg("secure-port", "6443"),
        arg("allow-privileged", "true"),
        arg("b", "2"),
        arg("b", "1"),
    ];
    let overrides = [
        arg("z-flag", "1"),
        arg("secure-port", "8443"),
        arg("a-flag", "x"),
        arg("secure-port", "9443"),
    ];
    assert_eq!(
        arguments_to_command(defaults, &overrides),
        [
            "--allow-privileged=true",
            "--b=1",
            "--b=2",
            "--z-flag=1",
            "--secure-port=8443",
            "--a-flag=x",
            "--secure-port=9443",
        ]
    );
}

#[test]
fn set_arg_replaces_the_last_occurrence_or_appends() {
    let mut args = vec![arg("a", "1"), arg("a", "2")];
    set_arg(&mut args, "a", "3");
    set_arg(&mut args, "b", "4");
    assert_eq!(args, [arg("a", "1"), arg("a", "3"), arg("b", "4")]);
    assert_eq!(arg_value(&args, "a"), Some("3"));
    assert_eq!(arg_value(&args, "c"), None);
}

#[test]
fn later_env_lists_override_and_the_result_is_sorted() {
    let proxy = [EnvVar {
        name: "https_proxy".into(),
        value: "http://p:3128".into(),
    }];
    let user = [
        EnvVar {
            name: "https_proxy".into(),
            value: "http://q:3128".into(),
        },
        EnvVar {
            name: "A".into(),
            value: String::new(),
        },
    ];
    assert_eq!(
        merge_env_vars(&[&proxy, &user]),
        [
            json!({"name": "A"}),
            json!({"name": "https_proxy", "value": "http://q:3128"})
        ]
    );
}

#[test]
fn only_non_empty_proxy_variables_are_passed_on() {
    let environment = [
        ("HTTPS_PROXY", "http://p"),
        ("no_proxy", "10.0.0.0/8"),
        ("http_proxy", ""),
        ("PATH", "/bin"),
    ]
    .map(|(name, value)| (name.to_owned(), value.to_owned()));
    let names: Vec<String> = proxy_env_vars(environment)
        .into_iter()
        .map(|env| env.name)
        .collect();
    assert_eq!(names, ["HTTPS_PROXY", "no_proxy"]);
}

#[test]
fn probes_have_kubeadms_timings() {
    let target = ProbeTarget {
        host: "10.0.0.1",
        path: "/livez",
        scheme: Scheme::Https,
    };
    assert_eq!(
        liveness_probe(target),
        json!({"httpGet": {"host": "10.0.0.1", "path": "/livez", "port": "probe-port", "scheme": "HTTPS"},
               "initialDelaySeconds": 10, "timeoutSeconds": 15, "periodSeconds": 10, "failureThreshold": 8})
    );
    let readiness = readiness_probe(ProbeTarget { host: "", ..target });
    assert_eq!(
        readiness,
        json!({"httpGet": {"path": "/livez", "port": "probe-port", "scheme": "HTTPS"},
               "timeoutSeconds": 15, "periodSeconds": 1, "failureThreshold": 3})
    );
    assert_eq!(startup_probe(target, None)["failureThreshold"], 24);
    assert_eq!(
        startup_probe(target, Some(Duration::from_secs(95)))["failureThreshold"],
        10
    );
}

#[test]
fn unspecified_bind_addresses_probe_the_pod_ip() {
    assert_eq!(probe_address("0.0.0.0"), "");
    assert_eq!(probe_address("::"), "");
    assert_eq!(probe_address("127.0.0.1"), "127.0.0.1");
}

#[test]
fn host_path_mounts_are_unique_by_name_and_sorted() {
    let mut mounts = HostPathMounts::default();
    mounts.add(
        "k8s-certs",
        "/etc/kubernetes/pki",
        "/etc/kubernetes/pki",
        true,
        Some("DirectoryOrCreate"),
    );
    mounts.add(
        "ca-certs",
        "/etc/ssl/certs",
        "/etc/ssl/certs",
        true,
        Some("DirectoryOrCreate"),
    );
    mounts.add("k8s-certs", "/srv/pki", "/srv/pki", false, Some(""));
    assert_eq!(
        mounts.volumes(),
        [
            json!({"hostPath": {"path": "/etc/ssl/certs", "type": "DirectoryOrCreate"}, "name": "ca-certs"}),
            json!({"hostPath": {"path": "/srv/pki", "type": ""}, "name": "k8s-certs"}),
        ]
    );
    assert_eq!(
        mounts.volume_mounts(),
        [
            json!({"mountPath": "/etc/ssl/certs", "name": "ca-certs", "readOnly": true}),
            json!({"mountPath": "/srv/pki", "name": "k8s-certs"}),
        ]
    );
}

#[test]
fn paths_are_joined_and_cleaned_like_go() {
    assert_eq!(
        join_path("/etc/kubernetes/pki", "ca.crt"),
        "/etc/kubernetes/pki/ca.crt"
    );
    assert_eq!(
        join_path("/etc/kubernetes/pki/", "etcd/ca.crt"),
        "/etc/kubernetes/pki/etcd/ca.crt"
    );
    assert_eq!(join_path("/srv//a/./b/../pki", "x"), "/srv/a/pki/x");
    assert_eq!(join_path("/../a", "b"), "/a/b");
    assert_eq!(join_path("rel/..", ".."), "..");
    assert_eq!(join_path("", ""), "");
}

#[test]
fn rootless_control_plane_is_refused() {
    let mut config = kubeforge_api::EffectiveConfig::default();
    assert!(refuse_rootless_control_plane(&config).is_ok());
    config
        .cluster
        .feature_gates
        .insert("RootlessControlPlane".into(), false);
    assert!(refuse_rootless_control_plane(&config).is_ok());
    config
        .cluster
        .feature_gates
        .insert("RootlessControlPlane".into(), true);
    assert!(matches!(
        refuse_rootless_control_plane(&config),
        Err(crate::PhaseError::InvalidConfig(error)) if error.field == "featureGates.RootlessControlPlane"
    ));
}
