//! The command line: one module per command.

mod component;
mod config;
mod init;
mod version;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// kubeforge bootstraps Kubernetes control planes the way kubeadm does, with every phase a
/// sandboxed WebAssembly component.
#[derive(Parser)]
#[command(name = "kubeforge", version, about, long_about = None)]
pub struct Cli {
    /// Take every node path under this directory instead of `/` (run unprivileged into a
    /// scratch directory). Manifests keep the node's own paths.
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    root: PathBuf,

    /// Where compiled phase components are cached [default: $XDG_CACHE_HOME/kubeforge or
    /// ~/.cache/kubeforge].
    #[arg(long, global = true, value_name = "DIR", env = "KUBEFORGE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Append a JSON line per effect and denial to this file [default:
    /// <root>/etc/kubernetes/tmp/kubeforge-journal.jsonl]; not written in --dry-run.
    #[arg(long, global = true, value_name = "FILE")]
    journal: Option<PathBuf>,

    /// How to control the node's services (the kubelet): a program run as `<command> <stop|start|restart> <service>`.
    #[arg(
        long,
        global = true,
        value_name = "COMMAND",
        env = "KUBEFORGE_SERVICE_COMMAND",
        default_value = "systemctl"
    )]
    service_command: String,

    /// Log verbosity for diagnostics on stderr (`-v` debug, `-vv` trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run this command in order to set up the Kubernetes control plane.
    Init(Box<init::InitCommand>),
    /// Inspect phase components and what fills each slot.
    Component(component::ComponentCommand),
    /// Manage configuration for a kubeadm-compatible cluster.
    Config(config::ConfigCommand),
    /// Print the version of kubeforge.
    Version(version::VersionCommand),
}

/// The global options of the commands that act on the node.
pub struct NodeOptions {
    pub root: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub journal: Option<PathBuf>,
    pub service_command: String,
}

/// Parse the command line, run it, and turn errors into a message and an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let cache_dir = cli.cache_dir.clone().or_else(default_cache_dir);
    let result = match cli.command {
        Command::Init(command) => init::run(
            *command,
            NodeOptions {
                root: cli.root,
                cache_dir: cache_dir.clone(),
                journal: cli.journal,
                service_command: cli.service_command,
            },
        ),
        Command::Component(command) => component::run(command, cache_dir),
        Command::Config(command) => config::run(command),
        Command::Version(command) => version::run(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        // kube-client logs every failed connection attempt as an error; the kube capability
        // retries those and reports the last one itself.
        0 => "warn,kube_client=off",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("KUBEFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .map(|dir| dir.join("kubeforge"))
}
