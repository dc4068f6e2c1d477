//! `kubeforge init phase certs|kubeconfig|etcd|control-plane` into a fresh `--root`, checked
//! file by file against what kubeadm v1.37 writes for the same configuration.

mod common;

use common::*;

const VERSION: &str = "v1.37.2";

/// Everything a user would check after the node phases, for one configuration.
fn assert_node(node: &Node, expect: &Expect) {
    let pki = node.path(expect.cert_dir);
    assert_pki(&pki, expect, node.started, node.finished);
    assert_kubeconfigs(&node.path("/etc/kubernetes"), &pki, expect);
    assert_apiserver(node, expect);
    assert_controller_manager(node, expect);
    assert_scheduler(node);
    assert_etcd(node, expect);
    assert_no_leftovers(node);
    Manifest::load(&manifests(node), "kube-apiserver")
        .assert_flag_order(&expect.apiserver_extra_args);
    for component in ["kube-controller-manager", "kube-scheduler", "etcd"] {
        Manifest::load(&manifests(node), component).assert_flag_order(&[]);
    }
}

fn assert_no_leftovers(node: &Node) {
    let leftovers: Vec<_> = walk(node.root.path())
        .into_iter()
        .filter(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

fn manifests(node: &Node) -> std::path::PathBuf {
    node.path("/etc/kubernetes/manifests")
}

fn assert_apiserver(node: &Node, expect: &Expect) {
    let m = Manifest::load(&manifests(node), "kube-apiserver");
    m.assert_common(&format!("registry.k8s.io/kube-apiserver:{VERSION}"));
    let f = m.flags();
    let what = "kube-apiserver";
    let dir = expect.cert_dir;
    let etcd_local = if expect.ipv6() { "[::1]" } else { "127.0.0.1" };
    let expected: Vec<(&str, String)> = vec![
        ("advertise-address", expect.advertise.into()),
        ("allow-privileged", "true".into()),
        ("client-ca-file", format!("{dir}/ca.crt")),
        ("enable-admission-plugins", "NodeRestriction".into()),
        ("enable-bootstrap-token-auth", "true".into()),
        ("etcd-cafile", format!("{dir}/etcd/ca.crt")),
        ("etcd-certfile", format!("{dir}/apiserver-etcd-client.crt")),
        ("etcd-keyfile", format!("{dir}/apiserver-etcd-client.key")),
        ("etcd-servers", format!("https://{etcd_local}:2379")),
        (
            "kubelet-client-certificate",
            format!("{dir}/apiserver-kubelet-client.crt"),
        ),
        (
            "kubelet-client-key",
            format!("{dir}/apiserver-kubelet-client.key"),
        ),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname".into(),
        ),
        (
            "proxy-client-cert-file",
            format!("{dir}/front-proxy-client.crt"),
        ),
        (
            "proxy-client-key-file",
            format!("{dir}/front-proxy-client.key"),
        ),
        ("requestheader-allowed-names", "front-proxy-client".into()),
        (
            "requestheader-client-ca-file",
            format!("{dir}/front-proxy-ca.crt"),
        ),
        (
            "requestheader-extra-headers-prefix",
            "X-Remote-Extra-".into(),
        ),
        ("requestheader-group-headers", "X-Remote-Group".into()),
        ("requestheader-username-headers", "X-Remote-User".into()),
        ("secure-port", expect.bind_port.to_string()),
        (
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{}", expect.dns_domain),
        ),
        ("service-account-key-file", format!("{dir}/sa.pub")),
        ("service-account-signing-key-file", format!("{dir}/sa.key")),
        ("service-cluster-ip-range", expect.service_subnet.into()),
        ("tls-cert-file", format!("{dir}/apiserver.crt")),
        ("tls-private-key-file", format!("{dir}/apiserver.key")),
    ];
    for (name, value) in &expected {
        assert_eq!(flag(&f, name, what), value, "{what}: --{name}");
    }
    let custom = expect.control_plane_endpoint.is_some();
    if custom {
        // extraArgs: an override replaces the default, a new flag is added.
        assert_eq!(
            flag(&f, "authorization-mode", what),
            "Node,RBAC,Webhook",
            "{what}: extraArgs override"
        );
        assert_eq!(
            flag(&f, "audit-log-path", what),
            "/var/log/kubernetes/audit.log",
            "{what}: extraArgs"
        );
        assert_eq!(f.len(), expected.len() + 2, "{what}: no other flags: {f:?}");
    } else {
        assert_eq!(
            flag(&f, "authorization-mode", what),
            "Node,RBAC",
            "{what}: --authorization-mode"
        );
        assert_eq!(f.len(), expected.len() + 1, "{what}: no other flags: {f:?}");
    }

    let endpoint = Expect::join_host_port(expect.advertise, expect.bind_port);
    assert_eq!(
        m.pod["metadata"]["annotations"]["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
        endpoint.as_str(),
        "{what}: advertise-address endpoint annotation"
    );
    let port = u64::from(expect.bind_port);
    for (kind, path) in [
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/livez"),
    ] {
        assert_eq!(
            m.probe(kind),
            Some((
                expect.advertise.to_string(),
                port,
                path.to_string(),
                "HTTPS".to_string()
            )),
            "{what}: {kind}"
        );
    }
    assert_eq!(
        m.container()["resources"]["requests"]["cpu"],
        "250m",
        "{what}: cpu request"
    );

    let mut volumes = vec![
        (
            "ca-certs".to_string(),
            "/etc/ssl/certs".to_string(),
            "DirectoryOrCreate".to_string(),
        ),
        (
            "k8s-certs".to_string(),
            dir.to_string(),
            "DirectoryOrCreate".to_string(),
        ),
    ];
    let mut mounts = vec![
        ("ca-certs".to_string(), "/etc/ssl/certs".to_string(), true),
        ("k8s-certs".to_string(), dir.to_string(), true),
    ];
    if custom {
        volumes.insert(
            0,
            (
                "audit-logs".into(),
                "/var/log/kubernetes".into(),
                "DirectoryOrCreate".into(),
            ),
        );
        mounts.insert(
            0,
            ("audit-logs".into(), "/var/log/kubernetes".into(), false),
        );
    }
    // CA directories that exist on this (real) machine are mounted as well; they are not under
    // test here, so only the volumes kubeadm always writes are compared.
    let conditional = |name: &str| {
        [
            "etc-ca-certificates",
            "etc-pki-ca-trust",
            "etc-pki-tls-certs",
            "usr-share-ca-certificates",
            "usr-local-share-ca-certificates",
        ]
        .contains(&name)
    };
    let actual_volumes: Vec<_> = m
        .volumes()
        .into_iter()
        .filter(|v| !conditional(&v.0))
        .collect();
    let actual_mounts: Vec<_> = m
        .mounts()
        .into_iter()
        .filter(|v| !conditional(&v.0))
        .collect();
    assert_eq!(actual_volumes, volumes, "{what}: volumes");
    assert_eq!(actual_mounts, mounts, "{what}: volume mounts");
}

fn assert_controller_manager(node: &Node, expect: &Expect) {
    let m = Manifest::load(&manifests(node), "kube-controller-manager");
    m.assert_common(&format!(
        "registry.k8s.io/kube-controller-manager:{VERSION}"
    ));
    let f = m.flags();
    let what = "kube-controller-manager";
    let dir = expect.cert_dir;
    let mut expected: Vec<(&str, String)> = vec![
        (
            "authentication-kubeconfig",
            "/etc/kubernetes/controller-manager.conf".into(),
        ),
        (
            "authorization-kubeconfig",
            "/etc/kubernetes/controller-manager.conf".into(),
        ),
        ("bind-address", "127.0.0.1".into()),
        ("client-ca-file", format!("{dir}/ca.crt")),
        ("cluster-name", expect.cluster_name.into()),
        ("cluster-signing-cert-file", format!("{dir}/ca.crt")),
        ("cluster-signing-key-file", format!("{dir}/ca.key")),
        ("controllers", "*,bootstrapsigner,tokencleaner".into()),
        (
            "kubeconfig",
            "/etc/kubernetes/controller-manager.conf".into(),
        ),
        ("leader-elect", "true".into()),
        (
            "requestheader-client-ca-file",
            format!("{dir}/front-proxy-ca.crt"),
        ),
        ("root-ca-file", format!("{dir}/ca.crt")),
        ("service-account-private-key-file", format!("{dir}/sa.key")),
        ("use-service-account-credentials", "true".into()),
    ];
    if let Some(pods) = expect.pod_subnet {
        expected.push(("allocate-node-cidrs", "true".into()));
        expected.push(("cluster-cidr", pods.into()));
        expected.push(("service-cluster-ip-range", expect.service_subnet.into()));
    }
    for (name, value) in &expected {
        assert_eq!(flag(&f, name, what), value, "{what}: --{name}");
    }
    assert_eq!(f.len(), expected.len(), "{what}: no other flags: {f:?}");
    for kind in ["livenessProbe", "startupProbe"] {
        assert_eq!(
            m.probe(kind),
            Some(("127.0.0.1".into(), 10257, "/healthz".into(), "HTTPS".into())),
            "{what}: {kind}"
        );
    }
    assert_eq!(
        m.probe("readinessProbe"),
        None,
        "{what}: no readiness probe"
    );
    assert_eq!(
        m.container()["resources"]["requests"]["cpu"],
        "200m",
        "{what}: cpu request"
    );
    let volumes: Vec<_> = m
        .volumes()
        .into_iter()
        .filter(|v| !v.0.contains("ca-certificates") && !v.0.starts_with("etc-pki"))
        .collect();
    assert_eq!(
        volumes,
        vec![
            (
                "ca-certs".to_string(),
                "/etc/ssl/certs".to_string(),
                "DirectoryOrCreate".to_string()
            ),
            ("k8s-certs".into(), dir.into(), "DirectoryOrCreate".into()),
            (
                "kubeconfig".into(),
                "/etc/kubernetes/controller-manager.conf".into(),
                "FileOrCreate".into()
            ),
        ],
        "{what}: volumes"
    );
    let mounts: Vec<_> = m
        .mounts()
        .into_iter()
        .filter(|v| !v.0.contains("ca-certificates") && !v.0.starts_with("etc-pki"))
        .collect();
    assert_eq!(
        mounts,
        vec![
            ("ca-certs".to_string(), "/etc/ssl/certs".to_string(), true),
            ("k8s-certs".into(), dir.into(), true),
            (
                "kubeconfig".into(),
                "/etc/kubernetes/controller-manager.conf".into(),
                true
            ),
        ],
        "{what}: volume mounts"
    );
}

fn assert_scheduler(node: &Node) {
    let m = Manifest::load(&manifests(node), "kube-scheduler");
    m.assert_common(&format!("registry.k8s.io/kube-scheduler:{VERSION}"));
    let what = "kube-scheduler";
    let f = m.flags();
    let expected = [
        (
            "authentication-kubeconfig",
            "/etc/kubernetes/scheduler.conf",
        ),
        ("authorization-kubeconfig", "/etc/kubernetes/scheduler.conf"),
        ("bind-address", "127.0.0.1"),
        ("kubeconfig", "/etc/kubernetes/scheduler.conf"),
        ("leader-elect", "true"),
    ];
    for (name, value) in expected {
        assert_eq!(flag(&f, name, what), value, "{what}: --{name}");
    }
    assert_eq!(f.len(), expected.len(), "{what}: no other flags: {f:?}");
    for (kind, path) in [
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/livez"),
    ] {
        assert_eq!(
            m.probe(kind),
            Some(("127.0.0.1".into(), 10259, path.into(), "HTTPS".into())),
            "{what}: {kind}"
        );
    }
    assert_eq!(
        m.container()["resources"]["requests"]["cpu"],
        "100m",
        "{what}: cpu request"
    );
    assert_eq!(
        m.volumes(),
        vec![(
            "kubeconfig".to_string(),
            "/etc/kubernetes/scheduler.conf".to_string(),
            "FileOrCreate".to_string()
        )],
        "{what}: volumes"
    );
    assert_eq!(
        m.mounts(),
        vec![(
            "kubeconfig".to_string(),
            "/etc/kubernetes/scheduler.conf".to_string(),
            true
        )],
        "{what}: volume mounts"
    );
}

fn assert_etcd(node: &Node, expect: &Expect) {
    let m = Manifest::load(&manifests(node), "etcd");
    m.assert_common("registry.k8s.io/etcd:3.7.0-0");
    let what = "etcd";
    let f = m.flags();
    let dir = expect.cert_dir;
    let adv = if expect.ipv6() {
        format!("[{}]", expect.advertise)
    } else {
        expect.advertise.to_string()
    };
    let local = if expect.ipv6() { "[::1]" } else { "127.0.0.1" };
    let expected: Vec<(&str, String)> = vec![
        ("advertise-client-urls", format!("https://{adv}:2379")),
        ("cert-file", format!("{dir}/etcd/server.crt")),
        ("client-cert-auth", "true".into()),
        ("data-dir", "/var/lib/etcd".into()),
        ("feature-gates", "InitialCorruptCheck=true".into()),
        ("initial-advertise-peer-urls", format!("https://{adv}:2380")),
        (
            "initial-cluster",
            format!("{}=https://{adv}:2380", expect.node),
        ),
        ("key-file", format!("{dir}/etcd/server.key")),
        (
            "listen-client-urls",
            format!("https://{local}:2379,https://{adv}:2379"),
        ),
        ("listen-metrics-urls", format!("http://{local}:2381")),
        ("listen-peer-urls", format!("https://{adv}:2380")),
        ("name", expect.node.into()),
        ("peer-cert-file", format!("{dir}/etcd/peer.crt")),
        ("peer-client-cert-auth", "true".into()),
        ("peer-key-file", format!("{dir}/etcd/peer.key")),
        ("peer-trusted-ca-file", format!("{dir}/etcd/ca.crt")),
        ("snapshot-count", "10000".into()),
        ("trusted-ca-file", format!("{dir}/etcd/ca.crt")),
        ("watch-progress-notify-interval", "5s".into()),
    ];
    for (name, value) in &expected {
        assert_eq!(flag(&f, name, what), value, "{what}: --{name}");
    }
    assert_eq!(f.len(), expected.len(), "{what}: no other flags: {f:?}");
    assert_eq!(
        m.pod["metadata"]["annotations"]["kubeadm.kubernetes.io/etcd.advertise-client-urls"],
        format!("https://{adv}:2379").as_str(),
        "{what}: advertise-client-urls annotation"
    );
    let probe_host = if expect.ipv6() { "::1" } else { "127.0.0.1" };
    for (kind, path) in [
        ("livenessProbe", "/livez"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/readyz"),
    ] {
        assert_eq!(
            m.probe(kind),
            Some((
                probe_host.to_string(),
                2381,
                path.to_string(),
                "HTTP".to_string()
            )),
            "{what}: {kind}"
        );
    }
    assert_eq!(
        m.container()["resources"]["requests"]["cpu"],
        "100m",
        "{what}: cpu request"
    );
    assert_eq!(
        m.container()["resources"]["requests"]["memory"],
        "100Mi",
        "{what}: memory request"
    );
    assert_eq!(
        m.volumes(),
        vec![
            (
                "etcd-certs".to_string(),
                format!("{dir}/etcd"),
                "DirectoryOrCreate".to_string()
            ),
            (
                "etcd-data".to_string(),
                "/var/lib/etcd".to_string(),
                "DirectoryOrCreate".to_string()
            ),
        ],
        "{what}: volumes"
    );
    assert_eq!(
        m.mounts(),
        vec![
            ("etcd-data".to_string(), "/var/lib/etcd".to_string(), false),
            ("etcd-certs".to_string(), format!("{dir}/etcd"), false),
        ],
        "{what}: volume mounts (kubeadm order: data, certs)"
    );
    assert!(
        node.path("/var/lib/etcd").is_dir(),
        "the etcd data dir exists under the root"
    );
}

#[test]
fn defaults_config_writes_kubeadms_pki_kubeconfigs_and_manifests() {
    let node = init_node("defaults.yaml");
    assert_node(&node, &Expect::defaults_yaml());
}

#[test]
fn custom_config_is_honoured_everywhere() {
    let node = init_node("custom.yaml");
    let expect = Expect::custom_yaml();
    // The certificates dir is where the config says, not /etc/kubernetes/pki.
    assert!(
        node.path("/etc/kf/pki/ca.crt").is_file(),
        "certs land under ROOT/etc/kf/pki"
    );
    assert!(
        !node.path("/etc/kubernetes/pki").exists(),
        "nothing is written to the default pki dir"
    );
    assert_node(&node, &expect);
}

#[test]
fn ecdsa_p256_config_uses_ec_keys_everywhere() {
    let node = init_node("ecdsa.yaml");
    assert_node(&node, &Expect::ecdsa_yaml());
}

#[test]
fn ipv6_advertise_address_is_used_in_sans_urls_and_probes() {
    let node = init_node("ipv6.yaml");
    assert_node(&node, &Expect::ipv6_yaml());
}

#[test]
fn certs_output_names_every_certificate_and_the_serving_sans() {
    let node = init_node("custom.yaml");
    let certs = &node.outputs[0].stdout;
    assert!(
        certs.contains("[certs] Using certificateDir folder \"/etc/kf/pki\""),
        "{certs}"
    );
    for name in [
        "ca",
        "apiserver",
        "apiserver-kubelet-client",
        "front-proxy-ca",
        "front-proxy-client",
        "etcd/ca",
        "etcd/server",
        "etcd/peer",
        "etcd/healthcheck-client",
        "apiserver-etcd-client",
    ] {
        assert!(
            certs.contains(&format!(
                "[certs] Generating \"{name}\" certificate and key"
            )),
            "{name} missing from:\n{certs}"
        );
    }
    assert!(
        certs.contains("[certs] Generating \"sa\" key and public key"),
        "{certs}"
    );
    assert!(
        certs.contains(
            "apiserver serving cert is signed for DNS names [*.apps.forge.example api.forge.example cp-1 extra.forge.example kubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.forge.internal] and IPs [10.200.0.1 192.168.10.5 203.0.113.7]"
        ),
        "{certs}"
    );
    let kubeconfig = &node.outputs[1].stdout;
    for file in [
        "admin.conf",
        "super-admin.conf",
        "kubelet.conf",
        "controller-manager.conf",
        "scheduler.conf",
    ] {
        assert!(
            kubeconfig.contains(&format!("Writing \"{file}\" kubeconfig file")),
            "{kubeconfig}"
        );
    }
}
