use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::Arg;
use kubeforge_sdk::testing;
use serde_json::json;

use super::*;

const CONTAINERD: &str = "unix:///var/run/containerd/containerd.sock";

fn config() -> EffectiveConfig {
    let mut config = testing::config(json!({}));
    config.init.node_registration.cri_socket = Some(CONTAINERD.into());
    config
}

fn args(pairs: &[(&str, &str)]) -> Vec<Arg> {
    pairs
        .iter()
        .map(|(name, value)| Arg {
            name: (*name).into(),
            value: (*value).into(),
        })
        .collect()
}

#[test]
fn flags_file_names_the_node_only_when_it_is_not_the_hostname() {
    assert_eq!(
        flags_file(&config(), Some("node1")),
        "KUBELET_KUBEADM_ARGS=\"\"\n",
        "kubeadm leaves the kubelet to pick the hostname"
    );
    assert_eq!(
        flags_file(&config(), Some("other-machine")),
        "KUBELET_KUBEADM_ARGS=\"--hostname-override=node1\"\n"
    );
    assert_eq!(
        flags_file(&config(), None),
        "KUBELET_KUBEADM_ARGS=\"--hostname-override=node1\"\n",
        "a hostname the host did not give is not assumed"
    );
}

#[test]
fn kubelet_extra_args_follow_kubeadm_s_flags_in_the_user_s_order() {
    let mut config = config();
    config.init.node_registration.kubelet_extra_args = args(&[
        ("v", "4"),
        ("node-labels", "zone=a,rack=\"r1\""),
        ("cgroup-root", "/kube"),
    ]);
    assert_eq!(
        flags_file(&config, None),
        "KUBELET_KUBEADM_ARGS=\"--hostname-override=node1 --v=4 --node-labels=zone=a,rack=\\\"r1\\\" --cgroup-root=/kube\"\n"
    );
}

#[test]
fn a_hostname_override_extra_arg_replaces_kubeadm_s() {
    let mut config = config();
    config.init.node_registration.kubelet_extra_args =
        args(&[("hostname-override", "cp-1.example.com"), ("v", "2")]);
    assert_eq!(
        kubelet_flags(&config, Some("node1")),
        ["--hostname-override=cp-1.example.com", "--v=2"]
    );
}

#[test]
fn without_node_local_cri_socket_the_socket_is_a_flag_and_there_is_no_instance_config() {
    for version in ["v1.35.4", "v1.36.3"] {
        let mut config = config();
        config.cluster.kubernetes_version = Some(version.into());
        config
            .cluster
            .feature_gates
            .insert("NodeLocalCRISocket".into(), false);
        assert!(!node_local_cri_socket(&config), "{version}");
        assert_eq!(
            kubelet_flags(&config, None),
            [
                format!("--container-runtime-endpoint={CONTAINERD}"),
                "--hostname-override=node1".into(),
            ]
        );
        let file = config_file(&config, false).unwrap();
        assert!(
            file.yaml.contains("containerRuntimeEndpoint: \"\"\n"),
            "{}",
            file.yaml
        );
    }
}

#[test]
fn v1_37_always_puts_the_cri_socket_in_the_instance_config() {
    let config = config();
    assert_eq!(config.kubernetes_version(), "v1.37.2");
    assert!(node_local_cri_socket(&config));
    assert_eq!(kubelet_flags(&config, None), ["--hostname-override=node1"]);
}

#[test]
fn instance_config_holds_the_cri_socket() {
    assert!(node_local_cri_socket(&config()));
    assert_eq!(
        instance_config(&config()),
        format!("containerRuntimeEndpoint: \"{CONTAINERD}\"\n")
    );
}

#[test]
fn config_yaml_is_the_cluster_configuration_with_this_node_s_settings() {
    let mut config = config();
    config.kubelet = Some(json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "maxPods": 30,
        "clusterDomain": "corp.internal",
        "authentication": {"anonymous": {"enabled": true}},
    }));
    let ConfigFile {
        yaml,
        warning,
        resolv_conf_set,
    } = config_file(&config, true).unwrap();
    assert_eq!(warning, None);
    assert!(resolv_conf_set);
    for line in [
        "apiVersion: kubelet.config.k8s.io/v1beta1\n",
        "kind: KubeletConfiguration\n",
        "clusterDNS:\n- 10.96.0.10\n",
        "clusterDomain: corp.internal\n",
        "maxPods: 30\n",
        "staticPodPath: /etc/kubernetes/manifests\n",
        "cgroupDriver: systemd\n",
        "rotateCertificates: true\n",
        "healthzBindAddress: 127.0.0.1\n",
        "healthzPort: 10248\n",
        "resolvConf: /run/systemd/resolve/resolv.conf\n",
        &format!("containerRuntimeEndpoint: {CONTAINERD}\n"),
        "    clientCAFile: /etc/kubernetes/pki/ca.crt\n",
    ] {
        assert!(yaml.contains(line), "{line:?} missing from:\n{yaml}");
    }
    assert!(yaml.contains("  anonymous:\n    enabled: true\n"), "{yaml}");
}

#[test]
fn without_systemd_resolved_the_kubelet_keeps_its_resolver() {
    let file = config_file(&config(), false).unwrap();
    assert!(!file.yaml.contains("resolvConf"), "{}", file.yaml);
    assert!(!file.resolv_conf_set);
}

#[test]
fn a_user_resolv_conf_is_kept_with_kubeadm_s_warning() {
    let mut config = config();
    config.kubelet = Some(json!({"resolvConf": "/etc/resolv.conf"}));
    let file = config_file(&config, true).unwrap();
    assert!(
        file.yaml.contains("resolvConf: /etc/resolv.conf\n"),
        "{}",
        file.yaml
    );
    assert!(!file.resolv_conf_set);
    assert_eq!(
        file.warning.as_deref(),
        Some(
            "The recommended value for \"resolvConf\" in \"KubeletConfiguration\" is: /run/systemd/resolve/resolv.conf; the provided value is: /etc/resolv.conf"
        )
    );
}
