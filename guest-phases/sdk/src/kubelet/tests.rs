use kubeforge_api::EffectiveConfig;
use serde_json::json;

use super::*;

fn config(service_subnet: &str, kubelet: Option<Value>) -> EffectiveConfig {
    let mut config: EffectiveConfig = serde_json::from_value(json!({
        "init": {"nodeRegistration": {"name": "node1"}},
        "cluster": {
            "networking": {"serviceSubnet": service_subnet, "dnsDomain": "cluster.local"},
            "certificatesDir": "/etc/kubernetes/pki",
            "kubernetesVersion": "v1.35.4",
        },
    }))
    .unwrap();
    config.kubelet = kubelet;
    config
}

/// What each release's kubeadm prints for `kubeadm config print init-defaults
/// --component-configs KubeletConfiguration` (tests/golden/regenerate.sh).
const KUBEADM_DEFAULTS: [(&str, &str); 3] = [
    (
        "v1.35.4",
        include_str!("testdata/kubelet-config-v1.35.yaml"),
    ),
    (
        "v1.36.3",
        include_str!("testdata/kubelet-config-v1.36.yaml"),
    ),
    (
        "v1.37.2",
        include_str!("testdata/kubelet-config-v1.37.yaml"),
    ),
];

#[test]
fn defaults_match_each_releases_kubeadm_byte_for_byte() {
    for (version, kubeadm) in KUBEADM_DEFAULTS {
        let mut config = config("10.96.0.0/12", None);
        config.cluster.kubernetes_version = Some(version.into());
        let kubelet = configuration(&config).unwrap();
        assert_eq!(crate::yaml::to_string(&kubelet), kubeadm, "{version}");
    }
}

#[test]
fn cluster_dns_is_the_tenth_address_of_the_primary_service_subnet() {
    let kubelet = configuration(&config("fd00:10:96::/112,10.96.0.0/16", None)).unwrap();
    assert_eq!(kubelet["clusterDNS"], json!(["fd00:10:96::a"]));
}

#[test]
fn the_user_s_document_is_laid_over_the_defaults() {
    let user = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "clusterDNS": ["10.96.0.53"],
        "maxPods": 50,
        "authentication": {"webhook": {"cacheTTL": "2m0s"}},
        "evictionHard": {"memory.available": "200Mi"},
        "rotateCertificates": false,
        "staticPodPath": "",
        "syncFrequency": null,
    });
    let kubelet = configuration(&config("10.96.0.0/12", Some(user))).unwrap();
    // The user's values win; maps merge field by field.
    assert_eq!(kubelet["cgroupDriver"], "cgroupfs");
    assert_eq!(kubelet["clusterDNS"], json!(["10.96.0.53"]));
    assert_eq!(kubelet["maxPods"], 50);
    assert_eq!(kubelet["evictionHard"]["memory.available"], "200Mi");
    assert_eq!(kubelet["authentication"]["webhook"]["cacheTTL"], "2m0s");
    assert_eq!(kubelet["authentication"]["webhook"]["enabled"], true);
    assert_eq!(
        kubelet["authentication"]["x509"]["clientCAFile"],
        "/etc/kubernetes/pki/ca.crt"
    );
    // kubeadm always turns on certificate rotation, fills empty strings and keeps unset fields.
    assert_eq!(kubelet["rotateCertificates"], true);
    assert_eq!(kubelet["staticPodPath"], "/etc/kubernetes/manifests");
    assert_eq!(kubelet["syncFrequency"], "0s");
    assert_eq!(kubelet["kind"], "KubeletConfiguration");
}

#[test]
fn values_other_than_kubeadm_s_recommendations_are_warned_about() {
    let user = json!({
        "clusterDNS": ["10.96.0.53", "10.96.0.54"],
        "healthzPort": 10249,
        "authentication": {"anonymous": {"enabled": true}},
        "staticPodPath": "",
        "cgroupDriver": "cgroupfs",
    });
    let warnings = recommended_value_warnings(&config("10.96.0.0/12", Some(user)));
    assert_eq!(
        warnings,
        [
            "The recommended value for \"clusterDNS\" in \"KubeletConfiguration\" is: [10.96.0.10]; the provided value is: [10.96.0.53 10.96.0.54]",
            "The recommended value for \"authentication.anonymous.enabled\" in \"KubeletConfiguration\" is: false; the provided value is: true",
            "The recommended value for \"healthzPort\" in \"KubeletConfiguration\" is: 10248; the provided value is: 10249",
        ]
    );
    assert!(recommended_value_warnings(&config("10.96.0.0/12", None)).is_empty());
}

#[test]
fn healthz_comes_from_the_configuration() {
    let kubelet = configuration(&config(
        "10.96.0.0/12",
        Some(json!({"healthzBindAddress": "::1", "healthzPort": 10250})),
    ))
    .unwrap();
    assert_eq!(healthz(&kubelet), ("::1".to_owned(), 10250));
    assert_eq!(
        healthz(&json!({})),
        (HEALTHZ_BIND_ADDRESS.to_owned(), HEALTHZ_PORT)
    );
}

#[test]
fn strings_are_quoted_as_go_quotes_them() {
    assert_eq!(go_quote("--a=b --c=d"), r#""--a=b --c=d""#);
    assert_eq!(go_quote(r#"x"y\z"#), r#""x\"y\\z""#);
    assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
    assert_eq!(go_quote("bell\u{7}esc\u{1b}"), r#""bell\aesc\x1b""#);
    assert_eq!(go_quote("héllo"), "\"héllo\"");
}

#[test]
fn service_steps_say_what_kubeadm_says() {
    assert_eq!(
        ServiceStep::Start.failure_messages("exit status 5"),
        [
            "[kubelet-start] WARNING: unable to start the kubelet service: [exit status 5]",
            "[kubelet-start] Please ensure kubelet is reloaded and running manually.",
        ]
    );
    assert!(
        ServiceStep::Stop
            .no_init_system_message()
            .contains("won't make sure the kubelet not running")
    );
}
