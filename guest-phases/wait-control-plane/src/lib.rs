//! The `wait-control-plane` phase (`kubeadm init phase wait-control-plane`): wait until the
//! kubelet is healthy, then until every control-plane component it runs as a static Pod is.
//!
//! As kubeadm v1.35's waiter (`cmd/kubeadm/app/cmd/phases/init/waitcontrolplane.go`,
//! `util/apiclient/wait.go`): the kubelet's `/healthz` within `timeouts.kubeletHealthCheck`,
//! then kube-apiserver `/livez`, kube-controller-manager `/healthz` and kube-scheduler `/livez`
//! together within `timeouts.controlPlaneComponentHealthCheck`. kubeadm reads each component's
//! address and port from the `--advertise-address`/`--bind-address` and `--secure-port` flags
//! of its static Pod manifest; those flags are kubeadm's defaults overridden by the component's
//! `extraArgs`, so this phase reads them from the same configuration the manifests were written
//! from. Unlike kubeadm, it probes an unspecified bind address (`0.0.0.0`, `::`) on loopback,
//! the only address besides the advertise address the host lets a probe reach.

use std::time::Duration;

use kubeforge_api::EffectiveConfig;
use kubeforge_api::net::join_host_port;
use kubeforge_api::v1beta4::Arg;
use kubeforge_sdk::kubelet;
use kubeforge_sdk::node::ProbeOutcome;
use kubeforge_sdk::staticpod::{MANIFESTS_DIR, arg_value};
use kubeforge_sdk::{FieldError, PhaseError, Result};

/// kubeadm's default for both health-check timeouts.
pub const DEFAULT_TIMEOUT: kubeforge_api::Duration = kubeforge_api::Duration::from_mins(4);

/// The first pause between two rounds of probes, and the longest. A component is seen healthy
/// at most 200 ms after it is (kubeadm polls every 500 ms); a round is a few local requests.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// kube-controller-manager's and kube-scheduler's default secure ports.
const CONTROLLER_MANAGER_PORT: u16 = 10257;
const SCHEDULER_PORT: u16 = 10259;

/// One health endpoint to wait for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub url: String,
}

/// `timeouts.kubeletHealthCheck` and `timeouts.controlPlaneComponentHealthCheck`.
pub fn timeouts(config: &EffectiveConfig) -> (kubeforge_api::Duration, kubeforge_api::Duration) {
    let timeouts = config.init.timeouts.as_ref();
    (
        timeouts
            .and_then(|t| t.kubelet_health_check)
            .unwrap_or(DEFAULT_TIMEOUT),
        timeouts
            .and_then(|t| t.control_plane_component_health_check)
            .unwrap_or(DEFAULT_TIMEOUT),
    )
}

/// The kubelet's healthz URL from the cluster's KubeletConfiguration; none when its
/// `healthzPort` is 0 (kubeadm then skips the check).
pub fn kubelet_check(config: &EffectiveConfig) -> std::result::Result<Option<Check>, String> {
    let (address, port) = kubelet::healthz(&kubelet::configuration(config)?);
    if port == 0 {
        return Ok(None);
    }
    let port = u16::try_from(port).map_err(|_| format!("healthzPort {port} is not a port"))?;
    Ok(Some(Check {
        name: "kubelet",
        url: format!(
            "http://{}/healthz",
            join_host_port(probe_host(&address), port)
        ),
    }))
}

/// The control-plane components' health endpoints, in kubeadm's order.
pub fn control_plane_checks(config: &EffectiveConfig) -> Result<Vec<Check>> {
    let cluster = &config.cluster;
    Ok(vec![
        Endpoint {
            name: "kube-apiserver",
            field: "apiServer",
            address_flag: "advertise-address",
            address: config.advertise_address(),
            port: config.bind_port(),
            path: "livez",
        }
        .check(&cluster.api_server.extra_args)?,
        Endpoint {
            name: "kube-controller-manager",
            field: "controllerManager",
            address_flag: "bind-address",
            address: "127.0.0.1",
            port: CONTROLLER_MANAGER_PORT,
            path: "healthz",
        }
        .check(&cluster.controller_manager.extra_args)?,
        Endpoint {
            name: "kube-scheduler",
            field: "scheduler",
            address_flag: "bind-address",
            address: "127.0.0.1",
            port: SCHEDULER_PORT,
            path: "livez",
        }
        .check(&cluster.scheduler.extra_args)?,
    ])
}

/// The API server's readiness endpoint (`/readyz` beside the `/livez` kubeadm checks): it
/// answers 200 once etcd is reachable and the bootstrap RBAC and priority classes exist, which
/// the API phases after this one need.
pub fn apiserver_readiness(checks: &[Check]) -> Option<Check> {
    checks
        .iter()
        .find(|check| check.name == "kube-apiserver")
        .and_then(|check| check.url.strip_suffix("/livez"))
        .map(|base| Check {
            name: "kube-apiserver",
            url: format!("{base}/readyz"),
        })
}

/// A component's health endpoint as kubeadm finds it: the address and port flags of its
/// command line, else kubeadm's defaults.
struct Endpoint<'a> {
    name: &'static str,
    /// The component's field in ClusterConfiguration.
    field: &'static str,
    address_flag: &'static str,
    address: &'a str,
    port: u16,
    path: &'static str,
}

impl Endpoint<'_> {
    fn check(&self, extra_args: &[Arg]) -> Result<Check> {
        let address = flag(extra_args, self.address_flag).unwrap_or(self.address);
        let port = match flag(extra_args, "secure-port") {
            None => self.port,
            Some(text) => text.parse::<u16>().map_err(|_| {
                PhaseError::InvalidConfig(FieldError {
                    field: format!("{}.extraArgs", self.field),
                    reason: format!("secure-port {text:?} is not a port"),
                })
            })?,
        };
        Ok(Check {
            name: self.name,
            url: format!(
                "https://{}/{}",
                join_host_port(probe_host(address), port),
                self.path
            ),
        })
    }
}

/// The last value of a flag in `args`; an empty one counts as unset, as in kubeadm.
fn flag<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    arg_value(args, name).filter(|value| !value.is_empty())
}

/// Where to reach a server bound to `address`: loopback for an unspecified address.
fn probe_host(address: &str) -> &str {
    match address {
        "0.0.0.0" => "127.0.0.1",
        "::" => "::1",
        address => address,
    }
}

/// Time as the waiting loop sees it; a fake one in tests.
pub trait Clock {
    /// Time since the clock was made.
    fn elapsed(&self) -> Duration;
    fn sleep(&mut self, duration: Duration);
}

/// The system's monotonic clock.
pub struct SystemClock(std::time::Instant);

impl SystemClock {
    pub fn start() -> Self {
        Self(std::time::Instant::now())
    }
}

impl Clock for SystemClock {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }

    fn sleep(&mut self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

/// A check that did not become healthy in time, with what answered it last.
#[derive(Debug, Clone)]
pub struct Unhealthy {
    pub check: Check,
    pub last: ProbeOutcome,
}

/// Probe every check in rounds until each has answered 200 or `timeout` has passed since
/// `clock` started, pausing between rounds with a growing backoff (50 ms doubling to 200 ms).
/// `healthy` hears of each check as it turns healthy, with the time it took; the checks that
/// never did are returned. A probe the host refuses (not granted, not a usable URL) ends the
/// wait at once: it would not succeed later.
pub fn wait_until_healthy(
    checks: &[Check],
    timeout: Duration,
    clock: &mut impl Clock,
    mut probe: impl FnMut(&str) -> Result<ProbeOutcome>,
    mut healthy: impl FnMut(&Check, Duration),
) -> Result<Vec<Unhealthy>> {
    let mut pending: Vec<Unhealthy> = checks
        .iter()
        .map(|check| Unhealthy {
            check: check.clone(),
            last: ProbeOutcome::Unreachable("not probed yet".into()),
        })
        .collect();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let mut still_pending = Vec::with_capacity(pending.len());
        for mut entry in pending {
            match probe(&entry.check.url)? {
                ProbeOutcome::Status(200) => healthy(&entry.check, clock.elapsed()),
                outcome => {
                    entry.last = outcome;
                    still_pending.push(entry);
                }
            }
        }
        pending = still_pending;
        let elapsed = clock.elapsed();
        if pending.is_empty() || elapsed >= timeout {
            return Ok(pending);
        }
        clock.sleep(backoff.min(timeout - elapsed));
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// `Duration` as Go prints a `time.Duration` (`4m0s`, `1.00123s`), as kubeadm prints times.
pub fn go_duration(duration: Duration) -> String {
    kubeforge_api::Duration::from(duration).to_string()
}

/// kubeadm's line before it waits for the kubelet to start the static Pods.
pub fn waiting_line() -> String {
    format!(
        "[wait-control-plane] Waiting for the kubelet to boot up the control plane as static Pods from directory {MANIFESTS_DIR:?}"
    )
}

/// What kubeadm prints about a kubelet that did not become healthy.
const KUBELET_HELP: &str = "Unfortunately, an error has occurred, likely caused by:
\t- The kubelet is not running
\t- The kubelet is unhealthy due to a misconfiguration of the node in some way (required cgroups disabled)

If you are on a systemd-powered system, you can try to troubleshoot the error with the following commands:
\t- 'systemctl status kubelet'
\t- 'journalctl -xeu kubelet'";

/// The error for a kubelet that did not become healthy: kubeadm's, with its help.
pub fn kubelet_error(unhealthy: &Unhealthy) -> PhaseError {
    let cause = match &unhealthy.last {
        ProbeOutcome::Status(code) => format!("status code: {code}"),
        ProbeOutcome::Unreachable(why) => format!("error: {why}"),
    };
    PhaseError::Failed(format!(
        "failed while waiting for the kubelet to start: The HTTP call equal to 'curl -sSL {}' returned {cause}\n\n{KUBELET_HELP}",
        unhealthy.check.url
    ))
}

/// The error for control-plane components that did not become healthy: one line per
/// component as kubeadm words them, then kubeadm's help with this node's CRI socket.
pub fn control_plane_error(unhealthy: &[Unhealthy], cri_socket: &str) -> PhaseError {
    let mut message = String::from("failed while waiting for the control plane to start:");
    for Unhealthy { check, last } in unhealthy {
        let line = match last {
            ProbeOutcome::Status(code @ (401 | 403)) => format!(
                "{} check failed at {} with status: {code} (kubeforge probes without credentials: \
                 check that anonymous requests to /livez are allowed)",
                check.name, check.url
            ),
            ProbeOutcome::Status(code) => {
                format!(
                    "{} check failed at {} with status: {code}",
                    check.name, check.url
                )
            }
            ProbeOutcome::Unreachable(why) => {
                format!("{} check failed at {}: {why}", check.name, check.url)
            }
        };
        message.push_str("\n\t- ");
        message.push_str(&line);
    }
    message.push_str(&format!(
        "\n\nA control plane component may have crashed or exited when started by the container runtime.
To troubleshoot, list all containers using your preferred container runtimes CLI.
Here is one example how you may list all running Kubernetes containers by using crictl:
\t- 'crictl --runtime-endpoint {cri_socket} ps -a | grep kube | grep -v pause'
\tOnce you have found the failing container, you can inspect its logs with:
\t- 'crictl --runtime-endpoint {cri_socket} logs CONTAINERID'"
    ));
    PhaseError::Failed(message)
}

#[cfg(target_arch = "wasm32")]
mod component {
    use kubeforge_sdk::{
        CapabilityRequest, Guest, PhaseContext, PhaseError, PhaseInfo, PhaseReport, failed, info,
        node, requests,
    };

    use crate::{
        SystemClock, apiserver_readiness, control_plane_checks, control_plane_error, go_duration,
        kubelet_check, kubelet_error, timeouts, wait_until_healthy, waiting_line,
    };

    struct Component;

    impl Guest for Component {
        fn describe() -> PhaseInfo {
            PhaseInfo {
                name: "wait-control-plane".into(),
                description: "Wait for the control plane to start".into(),
                sub_phases: vec![],
                requests: CapabilityRequest {
                    // The kubelet's /healthz; the components' /livez and /healthz; the API
                    // server's /readyz.
                    node_probes: requests::names(&[
                        "http://*/healthz",
                        "https://*/livez",
                        "https://*/healthz",
                        "https://*/readyz",
                    ]),
                    ..requests::none()
                },
            }
        }

        fn run(
            context: PhaseContext,
            sub_phase: Option<String>,
        ) -> Result<PhaseReport, PhaseError> {
            kubeforge_sdk::check_sub_phase("wait-control-plane", sub_phase.as_deref(), &[])?;
            let config = kubeforge_sdk::config(&context)?;
            let kubelet = kubelet_check(&config).map_err(failed)?;
            let components = control_plane_checks(&config)?;
            let (kubelet_timeout, control_plane_timeout) = timeouts(&config);
            info(waiting_line());

            if context.dry_run {
                match &kubelet {
                    Some(check) => info(format!(
                        "[dryrun] Would make sure the kubelet returns 'ok' at {}",
                        check.url
                    )),
                    None => info(SKIPPING_KUBELET),
                }
                for check in components.iter().chain(&apiserver_readiness(&components)) {
                    info(format!(
                        "[dryrun] Would make sure {} returns 'ok' at {}",
                        check.name, check.url
                    ));
                }
                return Ok(PhaseReport { outputs: vec![] });
            }

            match &kubelet {
                None => info(SKIPPING_KUBELET),
                Some(check) => {
                    info(format!(
                        "[kubelet-check] Waiting for a healthy kubelet at {}. This can take up to {kubelet_timeout}",
                        check.url
                    ));
                    let mut clock = SystemClock::start();
                    let unhealthy = wait_until_healthy(
                        std::slice::from_ref(check),
                        kubelet_timeout.to_std().unwrap_or_default(),
                        &mut clock,
                        node::probe,
                        |_, took| {
                            info(format!(
                                "[kubelet-check] The kubelet is healthy after {}",
                                go_duration(took)
                            ))
                        },
                    )?;
                    if let Some(unhealthy) = unhealthy.first() {
                        info(format!(
                            "[kubelet-check] The kubelet is not healthy after {}",
                            go_duration(crate::Clock::elapsed(&clock))
                        ));
                        return Err(kubelet_error(unhealthy));
                    }
                }
            }

            info(format!(
                "[control-plane-check] Waiting for healthy control plane components. This can take up to {control_plane_timeout}"
            ));
            for check in &components {
                info(format!(
                    "[control-plane-check] Checking {} at {}",
                    check.name, check.url
                ));
            }
            let mut clock = SystemClock::start();
            let unhealthy = wait_until_healthy(
                &components,
                control_plane_timeout.to_std().unwrap_or_default(),
                &mut clock,
                node::probe,
                |check, took| {
                    info(format!(
                        "[control-plane-check] {} is healthy after {}",
                        check.name,
                        go_duration(took)
                    ))
                },
            )?;
            if !unhealthy.is_empty() {
                let took = go_duration(crate::Clock::elapsed(&clock));
                for entry in &unhealthy {
                    info(format!(
                        "[control-plane-check] {} is not healthy after {took}",
                        entry.check.name
                    ));
                }
                let cri_socket = config
                    .init
                    .node_registration
                    .cri_socket
                    .as_deref()
                    .unwrap_or_default();
                return Err(control_plane_error(&unhealthy, cri_socket));
            }
            if let Some(ready) = apiserver_readiness(&components) {
                info(format!(
                    "[control-plane-check] Waiting for kube-apiserver to be ready at {}",
                    ready.url
                ));
                let remaining = control_plane_timeout
                    .to_std()
                    .unwrap_or_default()
                    .saturating_sub(crate::Clock::elapsed(&clock));
                let unready = wait_until_healthy(
                    std::slice::from_ref(&ready),
                    remaining,
                    &mut clock,
                    node::probe,
                    |_, took| {
                        info(format!(
                            "[control-plane-check] kube-apiserver is ready after {}",
                            go_duration(took)
                        ))
                    },
                )?;
                if !unready.is_empty() {
                    let cri_socket = config
                        .init
                        .node_registration
                        .cri_socket
                        .as_deref()
                        .unwrap_or_default();
                    return Err(control_plane_error(&unready, cri_socket));
                }
            }
            Ok(PhaseReport { outputs: vec![] })
        }
    }

    const SKIPPING_KUBELET: &str =
        "[kubelet-check] Skipping the kubelet health check because the healthz port is set to 0";

    kubeforge_sdk::export!(Component with_types_in kubeforge_sdk::bindings);
}

#[cfg(test)]
mod tests;
