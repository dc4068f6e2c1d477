use std::time::Duration;

use kubeforge_api::EffectiveConfig;
use kubeforge_api::v1beta4::{Arg, Timeouts};
use kubeforge_sdk::testing;
use serde_json::json;

use super::*;

fn config() -> EffectiveConfig {
    testing::config(json!({}))
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

fn urls(checks: &[Check]) -> Vec<&str> {
    checks.iter().map(|check| check.url.as_str()).collect()
}

#[test]
fn components_are_checked_where_kubeadm_checks_them() {
    let checks = control_plane_checks(&config()).unwrap();
    assert_eq!(
        checks.iter().map(|c| c.name).collect::<Vec<_>>(),
        [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler"
        ]
    );
    assert_eq!(
        urls(&checks),
        [
            "https://192.168.0.10:6443/livez",
            "https://127.0.0.1:10257/healthz",
            "https://127.0.0.1:10259/livez",
        ]
    );
}

#[test]
fn extra_args_move_the_endpoints_as_they_move_the_components() {
    let mut config = config();
    config.init.local_api_endpoint.bind_port = Some(8443);
    config.cluster.api_server.extra_args = args(&[("advertise-address", "10.0.0.5")]);
    config.cluster.controller_manager.extra_args = args(&[
        ("secure-port", "11257"),
        ("bind-address", "0.0.0.0"),
        ("secure-port", "12257"),
    ]);
    config.cluster.scheduler.extra_args = args(&[("bind-address", "::"), ("v", "2")]);
    assert_eq!(
        urls(&control_plane_checks(&config).unwrap()),
        [
            "https://10.0.0.5:8443/livez",
            // The last flag wins; an unspecified address is probed on loopback.
            "https://127.0.0.1:12257/healthz",
            "https://[::1]:10259/livez",
        ]
    );
    config.cluster.api_server.extra_args = args(&[("secure-port", "6444")]);
    assert_eq!(
        control_plane_checks(&config).unwrap()[0].url,
        "https://192.168.0.10:6444/livez"
    );
}

#[test]
fn an_ipv6_advertise_address_is_bracketed() {
    let mut config = config();
    config.init.local_api_endpoint.advertise_address = Some("fd00::10".into());
    assert_eq!(
        control_plane_checks(&config).unwrap()[0].url,
        "https://[fd00::10]:6443/livez"
    );
}

#[test]
fn a_secure_port_that_is_no_port_is_a_config_error() {
    let mut config = config();
    config.cluster.scheduler.extra_args = args(&[("secure-port", "ten")]);
    let Err(PhaseError::InvalidConfig(error)) = control_plane_checks(&config) else {
        panic!("expected a config error");
    };
    assert_eq!(error.field, "scheduler.extraArgs");
    assert!(error.reason.contains("\"ten\""), "{}", error.reason);
}

#[test]
fn the_kubelet_is_checked_where_its_configuration_serves_healthz() {
    assert_eq!(
        kubelet_check(&config()).unwrap().unwrap().url,
        "http://127.0.0.1:10248/healthz"
    );
    let mut config = config();
    config.kubelet = Some(json!({"healthzBindAddress": "::1", "healthzPort": 10250}));
    assert_eq!(
        kubelet_check(&config).unwrap().unwrap().url,
        "http://[::1]:10250/healthz"
    );
    config.kubelet = Some(json!({"healthzPort": 0}));
    assert_eq!(kubelet_check(&config).unwrap(), None);
}

#[test]
fn timeouts_come_from_the_configuration_with_kubeadm_s_defaults() {
    let mut config = config();
    assert_eq!(timeouts(&config), (DEFAULT_TIMEOUT, DEFAULT_TIMEOUT));
    config.init.timeouts = Some(Timeouts {
        kubelet_health_check: Some(kubeforge_api::Duration::from_secs(5)),
        ..Timeouts::default()
    });
    assert_eq!(
        timeouts(&config),
        (kubeforge_api::Duration::from_secs(5), DEFAULT_TIMEOUT)
    );
    assert_eq!(DEFAULT_TIMEOUT.to_string(), "4m0s");
}

/// A clock that only moves when the loop sleeps.
struct FakeClock {
    now: Duration,
    sleeps: Vec<Duration>,
}

impl Clock for FakeClock {
    fn elapsed(&self) -> Duration {
        self.now
    }

    fn sleep(&mut self, duration: Duration) {
        self.sleeps.push(duration);
        self.now += duration;
    }
}

fn checks() -> Vec<Check> {
    control_plane_checks(&config()).unwrap()
}

#[test]
fn components_are_polled_together_with_a_growing_backoff() {
    let mut clock = FakeClock {
        now: Duration::ZERO,
        sleeps: vec![],
    };
    let mut probes: Vec<String> = vec![];
    let mut healthy = vec![];
    let mut round = 0;
    let unhealthy = wait_until_healthy(
        &checks(),
        Duration::from_secs(240),
        &mut clock,
        |url| {
            probes.push(url.to_owned());
            round += 1;
            // The scheduler is healthy at once; the others after a few rounds.
            Ok(match url {
                "https://127.0.0.1:10259/livez" => ProbeOutcome::Status(200),
                "https://127.0.0.1:10257/healthz" if round > 8 => ProbeOutcome::Status(200),
                "https://192.168.0.10:6443/livez" if round > 12 => ProbeOutcome::Status(200),
                _ => ProbeOutcome::Unreachable("connection refused".into()),
            })
        },
        |check, took| healthy.push((check.name, took)),
    )
    .unwrap();
    assert!(unhealthy.is_empty());
    // Every pending component is probed in each round, not one after another.
    assert_eq!(
        probes[..3],
        [
            "https://192.168.0.10:6443/livez",
            "https://127.0.0.1:10257/healthz",
            "https://127.0.0.1:10259/livez",
        ]
    );
    assert_eq!(
        healthy.iter().map(|(name, _)| *name).collect::<Vec<_>>(),
        [
            "kube-scheduler",
            "kube-controller-manager",
            "kube-apiserver"
        ]
    );
    assert_eq!(healthy[0].1, Duration::ZERO);
    let ms = Duration::from_millis;
    assert_eq!(
        clock.sleeps[..4],
        [ms(50), ms(100), ms(200), ms(200)],
        "the pause grows to 200 ms"
    );
    assert!(clock.sleeps.iter().all(|&pause| pause <= ms(200)));
}

#[test]
fn a_timeout_reports_each_unhealthy_component_with_its_last_answer() {
    let mut clock = FakeClock {
        now: Duration::ZERO,
        sleeps: vec![],
    };
    let unhealthy = wait_until_healthy(
        &checks(),
        Duration::from_secs(3),
        &mut clock,
        |url| {
            Ok(if url.ends_with(":6443/livez") {
                ProbeOutcome::Status(500)
            } else if url.ends_with(":10257/healthz") {
                ProbeOutcome::Unreachable("connection refused".into())
            } else {
                ProbeOutcome::Status(200)
            })
        },
        |_, _| {},
    )
    .unwrap();
    // It gave up at the timeout, capping its pauses at 200 ms and never sleeping past it.
    assert_eq!(clock.now, Duration::from_secs(3));
    assert!(
        clock
            .sleeps
            .iter()
            .all(|&pause| pause <= Duration::from_millis(200))
    );
    assert_eq!(
        unhealthy.iter().map(|u| u.check.name).collect::<Vec<_>>(),
        ["kube-apiserver", "kube-controller-manager"]
    );
    let PhaseError::Failed(message) =
        control_plane_error(&unhealthy, "unix:///var/run/containerd/containerd.sock")
    else {
        panic!("expected a failure");
    };
    assert!(message.starts_with(
        "failed while waiting for the control plane to start:\n\
         \t- kube-apiserver check failed at https://192.168.0.10:6443/livez with status: 500\n\
         \t- kube-controller-manager check failed at https://127.0.0.1:10257/healthz: connection refused\n"
    ), "{message}");
    assert!(
        message.contains(
            "'crictl --runtime-endpoint unix:///var/run/containerd/containerd.sock ps -a | grep kube | grep -v pause'"
        ),
        "{message}"
    );
}

#[test]
fn a_probe_the_host_refuses_ends_the_wait() {
    let mut clock = FakeClock {
        now: Duration::ZERO,
        sleeps: vec![],
    };
    let result = wait_until_healthy(
        &checks(),
        Duration::from_secs(240),
        &mut clock,
        |_| Err(kubeforge_sdk::failed("probe: not an IP address")),
        |_, _| {},
    );
    assert!(matches!(result, Err(PhaseError::Failed(_))));
    assert!(clock.sleeps.is_empty());
}

#[test]
fn an_unhealthy_kubelet_is_reported_as_kubeadm_reports_it() {
    let unhealthy = Unhealthy {
        check: kubelet_check(&config()).unwrap().unwrap(),
        last: ProbeOutcome::Unreachable("connection refused".into()),
    };
    let PhaseError::Failed(message) = kubelet_error(&unhealthy) else {
        panic!("expected a failure");
    };
    assert!(message.starts_with(
        "failed while waiting for the kubelet to start: The HTTP call equal to 'curl -sSL http://127.0.0.1:10248/healthz' returned error: connection refused\n"
    ), "{message}");
    assert!(message.contains("'journalctl -xeu kubelet'"), "{message}");
}

#[test]
fn durations_print_as_go_prints_them() {
    assert_eq!(go_duration(Duration::from_nanos(1_001_230_000)), "1.00123s");
    assert_eq!(go_duration(Duration::from_millis(501)), "501ms");
    assert_eq!(
        waiting_line(),
        "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory \"/etc/kubernetes/manifests\""
    );
}

#[test]
fn the_api_server_s_readiness_is_checked_beside_its_liveness() {
    let checks = control_plane_checks(&config()).unwrap();
    let ready = apiserver_readiness(&checks).unwrap();
    assert_eq!(ready.name, "kube-apiserver");
    assert_eq!(
        ready.url,
        checks[0].url.replace("/livez", "/readyz"),
        "{checks:?}"
    );
    assert!(ready.url.ends_with(":6443/readyz"), "{}", ready.url);
}
