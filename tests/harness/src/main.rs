//! `kubeforge-testenv`: run the kubelet stand-in in the foreground.
//!
//! ```text
//! cargo run -p kubeforge-testenv -- run --root DIR
//! cargo run -p kubeforge-testenv -- bin-dir
//! kubeforge-testenv service --root DIR restart kubelet   # like `systemctl restart kubelet`
//! ```

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use kubeforge_testenv::{
    ControlPlaneLock, Options, RestartPolicy, SERVICE_SOCKET, ServiceAction, StandIn,
    busy_control_plane_ports, testenv_bin_dir,
};

#[derive(Parser)]
#[command(
    name = "kubeforge-testenv",
    about = "Kubelet stand-in: runs the static pod manifests under a root with the real control-plane binaries"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run ROOT/etc/kubernetes/manifests/* until Ctrl-C (or SIGTERM).
    Run {
        /// Test root: manifests in ROOT/etc/kubernetes/manifests, hostPaths under ROOT.
        #[arg(long)]
        root: PathBuf,
        /// Testenv bin dir (default: $KUBEFORGE_TESTENV_BIN, else tests/testenv/build.sh).
        #[arg(long, env = "KUBEFORGE_TESTENV_BIN")]
        bin_dir: Option<PathBuf>,
        /// Do not restart containers that exit.
        #[arg(long)]
        no_restart: bool,
        /// Seconds between SIGTERM and SIGKILL when stopping.
        #[arg(long, default_value_t = 10)]
        grace_seconds: u64,
        /// Do not take the cross-process control-plane port lock.
        #[arg(long)]
        no_lock: bool,
        /// Start the kubelet service at once (default: stopped until
        /// `kubeforge-testenv service --root DIR start kubelet`).
        #[arg(long)]
        start_kubelet: bool,
    },
    /// Stop, start or restart the kubelet of the stand-in running for ROOT, like
    /// `systemctl ACTION SERVICE` (exit 0 when done; 1 when no stand-in runs for
    /// ROOT; 5 for a service other than kubelet). A host under test runs services
    /// with `kubeforge-testenv service --root ROOT` as its service command.
    Service {
        /// The root the stand-in runs (`run --root ROOT` or StandIn::start in a test).
        #[arg(long)]
        root: PathBuf,
        #[arg(value_enum)]
        action: ServiceAction,
        /// Only `kubelet` (or `kubelet.service`) exists.
        service: String,
    },
    /// Build (if needed) and print the testenv bin dir.
    BinDir,
}

fn main() -> Result<()> {
    // The service client is a short-lived command a host runs: it prints only
    // the answer (or the error) and exits with systemctl's code.
    if let Cmd::Service {
        root,
        action,
        service,
    } = Cli::parse().cmd
    {
        std::process::exit(service_client(&root, action, &service));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::BinDir => {
            println!("{}", testenv_bin_dir()?.display());
            Ok(())
        }
        Cmd::Run {
            root,
            bin_dir,
            no_restart,
            grace_seconds,
            no_lock,
            start_kubelet,
        } => run(
            root,
            bin_dir,
            no_restart,
            grace_seconds,
            no_lock,
            start_kubelet,
        ),
        Cmd::Service { .. } => unreachable!("handled above"),
    }
}

fn service_client(root: &std::path::Path, action: ServiceAction, service: &str) -> i32 {
    match kubeforge_testenv::service::request(root, action, service) {
        Ok(reply) => {
            if action == ServiceAction::IsActive && reply.code != 5 {
                // The state on stdout, like systemctl.
                println!("{}", reply.message);
            } else if reply.code == 0 {
                // What happened, on stderr (a host may show it to its user).
                eprintln!("{}", reply.message);
            } else {
                eprintln!(
                    "kubeforge-testenv service {} {service}: {}",
                    action.as_str(),
                    reply.message
                );
            }
            reply.code
        }
        Err(e) => {
            eprintln!(
                "kubeforge-testenv service {} {service}: {e:#}",
                action.as_str()
            );
            1
        }
    }
}

fn run(
    root: PathBuf,
    bin_dir: Option<PathBuf>,
    no_restart: bool,
    grace_seconds: u64,
    no_lock: bool,
    start_kubelet: bool,
) -> Result<()> {
    let bin_dir = match bin_dir {
        Some(b) => b,
        None => testenv_bin_dir()?,
    };
    let _lock = if no_lock {
        None
    } else {
        let lock = match ControlPlaneLock::try_acquire()? {
            Some(l) => l,
            None => {
                eprintln!(
                    "waiting for the control-plane lock {} (another test or stand-in uses the fixed ports)",
                    ControlPlaneLock::path().display()
                );
                ControlPlaneLock::acquire()?
            }
        };
        Some(lock)
    };
    let busy = busy_control_plane_ports();
    if !busy.is_empty() {
        tracing::warn!(
            ?busy,
            "control-plane ports already in use on 127.0.0.1; components may fail to bind"
        );
    }
    let options = Options {
        grace_period: Duration::from_secs(grace_seconds),
        restart: if no_restart {
            RestartPolicy::Never
        } else {
            Options::default().restart
        },
        start_kubelet,
        ..Options::default()
    };
    let stand_in = StandIn::start_with(&root, &bin_dir, options)
        .with_context(|| format!("starting the stand-in on {}", root.display()))?;
    println!("root:       {}", stand_in.root().display());
    println!("manifests:  {}", stand_in.manifest_dir().display());
    println!(
        "logs:       {}/<component>.log",
        stand_in.log_dir().display()
    );
    println!("kubeconfig: {}", stand_in.admin_kubeconfig().display());
    println!(
        "kubectl:    {} --kubeconfig {} get --raw /readyz",
        stand_in.bin_dir().join("kubectl").display(),
        stand_in.admin_kubeconfig().display()
    );
    println!(
        "kubelet:    {} service --root {} restart kubelet   (socket {})",
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "kubeforge-testenv".into()),
        stand_in.root().display(),
        stand_in.root().join(SERVICE_SOCKET).display()
    );
    println!("Ctrl-C stops every component.");

    // Report when each component first becomes ready (startup timing).
    let stand_in = Arc::new(stand_in);
    let done = Arc::new(AtomicBool::new(false));
    let reporter = {
        let watcher = stand_in.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let begin = Instant::now();
            let mut reported = BTreeSet::new();
            while !done.load(Ordering::Relaxed) {
                for c in watcher.components() {
                    if !reported.contains(&c.component)
                        && watcher.probe(&c.component).unwrap_or(false)
                    {
                        println!(
                            "ready:      {} after {:.1}s",
                            c.component,
                            begin.elapsed().as_secs_f64()
                        );
                        reported.insert(c.component);
                    }
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the tokio runtime")?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {},
        }
        anyhow::Ok(())
    })?;
    eprintln!("stopping...");
    done.store(true, Ordering::Relaxed);
    let _ = reporter.join();
    match Arc::try_unwrap(stand_in) {
        Ok(s) => s.stop(),
        Err(_) => anyhow::bail!("internal error: stand-in still shared"),
    }
}
