use kubeforge_sdk::objects::HASH_ANNOTATION;
use kubeforge_sdk::testing::config;
use serde_json::json;

use super::*;

/// What each release's kubeadm prints for `kubeadm config print init-defaults
/// --component-configs KubeProxyConfiguration` (tests/golden/regenerate.sh).
const KUBEADM_DEFAULTS: [(&str, &str); 3] = [
    (
        "v1.35.4",
        include_str!("testdata/kube-proxy-config-v1.35.yaml"),
    ),
    (
        "v1.36.3",
        include_str!("testdata/kube-proxy-config-v1.36.yaml"),
    ),
    (
        "v1.37.2",
        include_str!("testdata/kube-proxy-config-v1.37.yaml"),
    ),
];

#[test]
fn kube_proxy_configuration_matches_each_releases_kubeadm_byte_for_byte() {
    for (version, kubeadm) in KUBEADM_DEFAULTS {
        let configuration =
            kube_proxy_configuration(&config(json!({"kubernetesVersion": version})));
        assert_eq!(configuration.yaml, kubeadm, "{version}");
        assert!(configuration.warnings.is_empty(), "{version}");
    }
    let with_pods = kube_proxy_configuration(&config(
        json!({"networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16"}}),
    ));
    assert!(
        with_pods.yaml.contains("clusterCIDR: 10.244.0.0/16\n"),
        "{}",
        with_pods.yaml
    );
}

#[test]
fn kube_proxy_objects_carry_kubeadms_names_and_a_signed_config_map() {
    let config = config(json!({}));
    let objects = kube_proxy_objects(&config, &kube_proxy_configuration(&config).yaml);
    let kinds: Vec<_> = objects
        .iter()
        .map(|o| {
            format!(
                "{} {}",
                o["kind"].as_str().unwrap(),
                o["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount kube-proxy",
            "ConfigMap kube-proxy",
            "DaemonSet kube-proxy",
            "ClusterRoleBinding kubeadm:node-proxier",
            "Role kube-proxy",
            "RoleBinding kube-proxy",
        ]
    );
    let kubeconfig = objects[1]["data"]["kubeconfig.conf"].as_str().unwrap();
    assert!(kubeconfig.contains("    server: https://192.168.0.10:6443\n"));
    assert!(
        !objects[1]["data"]["config.conf"]
            .as_str()
            .unwrap()
            .ends_with('\n')
    );
    assert!(
        objects[1]["metadata"]["annotations"][HASH_ANNOTATION]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    assert_eq!(
        objects[2]["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.k8s.io/kube-proxy:v1.37.2"
    );
    // kubeadm's DaemonSet tolerates every taint, with one toleration.
    assert_eq!(
        objects[2]["spec"]["template"]["spec"]["tolerations"],
        json!([{"operator": "Exists"}])
    );
}

#[test]
fn a_user_kube_proxy_configuration_is_laid_over_kubeadm_s_and_not_signed() {
    let mut cluster = config(
        json!({"networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16"}}),
    );
    cluster.kube_proxy = Some(json!({
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "nftables",
        "clusterCIDR": "",
        "clientConnection": {"qps": 7},
    }));
    let configuration = kube_proxy_configuration(&cluster);
    let text = &configuration.yaml;
    assert!(text.contains("mode: nftables\n"), "{text}");
    assert!(text.contains("clusterCIDR: 10.244.0.0/16\n"), "{text}");
    assert!(
        text.contains("  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\n"),
        "{text}"
    );
    assert!(text.contains("  qps: 7\n"), "{text}");
    assert!(configuration.warnings.is_empty());
    let objects = kube_proxy_objects(&cluster, text);
    assert!(
        objects[1]["metadata"].get("annotations").is_none(),
        "a user's configuration is uploaded unsigned: {}",
        objects[1]["metadata"]
    );
}

#[test]
fn values_other_than_kubeadm_s_are_kept_with_its_warnings() {
    let mut cluster = config(json!({
        "kubernetesVersion": "v1.36.3",
        "networking": {"serviceSubnet": "10.96.0.0/12", "podSubnet": "10.244.0.0/16"},
    }));
    cluster.kube_proxy = Some(json!({
        "bindAddress": "::",
        "clusterCIDR": "10.32.0.0/12",
        "clientConnection": {"kubeconfig": "/elsewhere.conf"},
        "mode": "ipvs",
    }));
    let configuration = kube_proxy_configuration(&cluster);
    for line in [
        "bindAddress: '::'\n",
        "clusterCIDR: 10.32.0.0/12\n",
        "  kubeconfig: /elsewhere.conf\n",
        "mode: ipvs\n",
    ] {
        assert!(
            configuration.yaml.contains(line),
            "{line:?} in {}",
            configuration.yaml
        );
    }
    let recommended = |field: &str, value: &str, given: &str| {
        format!(
            "The recommended value for \"{field}\" in \"KubeProxyConfiguration\" is: {value}; the provided value is: {given}"
        )
    };
    assert_eq!(
        configuration.warnings,
        [
            recommended("bindAddress", "0.0.0.0", "::"),
            recommended("clusterCIDR", "10.244.0.0/16", "10.32.0.0/12"),
            recommended(
                "clientConnection.kubeconfig",
                "/var/lib/kube-proxy/kubeconfig.conf",
                "/elsewhere.conf"
            ),
        ]
    );

    // v1.37: a wildcard of either family is fine, an address is measured against its own
    // family's wildcard, a non-address is named as such, and ipvs is deprecated.
    cluster.cluster.kubernetes_version = Some("v1.37.2".into());
    let warnings = kube_proxy_configuration(&cluster).warnings;
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings[2]
            .contains("\"mode\" is set to \"ipvs\" which has been deprecated since version v1.35")
    );
    for (bind_address, warning) in [
        ("fd00::1", Some(recommended("bindAddress", "::", "fd00::1"))),
        ("10.0.0.1", Some(recommended("bindAddress", "0.0.0.0", "10.0.0.1"))),
        (
            "localhost",
            Some("The bindAddress \"localhost\" in \"KubeProxyConfiguration\" is not a valid IP address".into()),
        ),
        ("0.0.0.0", None),
    ] {
        cluster.kube_proxy = Some(json!({"bindAddress": bind_address, "mode": "nftables"}));
        let warnings = kube_proxy_configuration(&cluster).warnings;
        assert_eq!(warnings.first().cloned(), warning, "{bind_address}");
    }
}
