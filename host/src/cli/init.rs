//! `kubeforge init` and `kubeforge init phase <phase> [<sub-phase>]`.

use std::path::PathBuf;

use super::NodeOptions;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crate::config::{self, InitFlags};
use crate::workflow::{Profile, RunOptions, Runner, tree};

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InitCommand {
    #[command(flatten)]
    flags: InitFlagArgs,

    #[command(subcommand)]
    subcommand: Option<InitSubcommand>,
}

#[derive(Subcommand)]
enum InitSubcommand {
    /// Use this command to invoke single phase of the init workflow.
    Phase(PhaseCommand),
}

#[derive(Args)]
struct PhaseCommand {
    /// The phase, e.g. `certs`; omit it to list the phases.
    phase: Option<String>,
    /// The sub-phase, e.g. `apiserver`, or `all`.
    sub_phase: Option<String>,

    #[command(flatten)]
    flags: InitFlagArgs,
}

/// kubeadm's `init` flags.
#[derive(Args, Default)]
struct InitFlagArgs {
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Choose a specific Kubernetes version for the control plane.
    #[arg(long)]
    kubernetes_version: Option<String>,
    /// The IP address the API Server will advertise it's listening on.
    #[arg(long)]
    apiserver_advertise_address: Option<String>,
    /// Port for the API Server to bind to.
    #[arg(long)]
    apiserver_bind_port: Option<u16>,
    /// Optional extra Subject Alternative Names (IP addresses and DNS names) for the API Server serving certificate.
    #[arg(long, value_delimiter = ',')]
    apiserver_cert_extra_sans: Vec<String>,
    /// Specify a stable IP address or DNS name for the control plane.
    #[arg(long)]
    control_plane_endpoint: Option<String>,
    /// Specify the node name.
    #[arg(long)]
    node_name: Option<String>,
    /// Use alternative range of IP address for service VIPs.
    #[arg(long)]
    service_cidr: Option<String>,
    /// Specify range of IP addresses for the pod network.
    #[arg(long)]
    pod_network_cidr: Option<String>,
    /// Use alternative domain for services, e.g. "myorg.internal".
    #[arg(long)]
    service_dns_domain: Option<String>,
    /// The path where to save and store the certificates.
    #[arg(long)]
    cert_dir: Option<String>,
    /// Path to the CRI socket to connect.
    #[arg(long)]
    cri_socket: Option<String>,
    /// Choose a container registry to pull control plane images from.
    #[arg(long)]
    image_repository: Option<String>,
    /// A set of key=value pairs that describe feature gates for various features.
    #[arg(long)]
    feature_gates: Option<String>,
    /// The token to use for establishing bidirectional trust between nodes and control-plane nodes.
    #[arg(long)]
    token: Option<String>,
    /// The duration before the token is automatically deleted (e.g. 1s, 2m, 3h).
    #[arg(long)]
    token_ttl: Option<String>,
    /// Key used to encrypt the control-plane certificates in the kubeadm-certs Secret (hex, 32 bytes).
    #[arg(long)]
    certificate_key: Option<String>,
    /// Path to a directory that contains files named "target[suffix][+patchtype].extension".
    #[arg(long)]
    patches: Option<String>,
    /// A list of checks whose errors will be shown as warnings. 'all' ignores errors from all checks.
    #[arg(long, value_delimiter = ',')]
    ignore_preflight_errors: Vec<String>,
    /// List of phases to be skipped.
    #[arg(long, value_delimiter = ',')]
    skip_phases: Vec<String>,
    /// Don't apply any changes; just output what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Upload control-plane certificates to the kubeadm-certs Secret.
    #[arg(long)]
    upload_certs: bool,
    /// Don't print the key used to encrypt the control-plane certificates.
    #[arg(long)]
    skip_certificate_key_print: bool,
}

impl InitFlagArgs {
    fn to_flags(&self) -> InitFlags {
        InitFlags {
            kubernetes_version: self.kubernetes_version.clone(),
            apiserver_advertise_address: self.apiserver_advertise_address.clone(),
            apiserver_bind_port: self.apiserver_bind_port,
            apiserver_cert_extra_sans: self.apiserver_cert_extra_sans.clone(),
            control_plane_endpoint: self.control_plane_endpoint.clone(),
            node_name: self.node_name.clone(),
            service_cidr: self.service_cidr.clone(),
            pod_network_cidr: self.pod_network_cidr.clone(),
            service_dns_domain: self.service_dns_domain.clone(),
            cert_dir: self.cert_dir.clone(),
            cri_socket: self.cri_socket.clone(),
            image_repository: self.image_repository.clone(),
            feature_gates: self.feature_gates.clone(),
            token: self.token.clone(),
            token_ttl: self.token_ttl.clone(),
            certificate_key: self.certificate_key.clone(),
            patches: self.patches.clone(),
            ignore_preflight_errors: self.ignore_preflight_errors.clone(),
            skip_phases: self.skip_phases.clone(),
            dry_run: self.dry_run,
        }
    }
}

pub fn run(command: InitCommand, node: NodeOptions) -> Result<()> {
    match command.subcommand {
        None => run_workflow(&command.flags, node, None),
        Some(InitSubcommand::Phase(PhaseCommand { phase: None, .. })) => {
            println!(
                "The phases of `kubeforge init` (run one with `kubeforge init phase <phase> [<sub-phase>|all]`):"
            );
            for (phase, description) in tree::phases() {
                println!("  {phase:<20} {description}");
            }
            Ok(())
        }
        Some(InitSubcommand::Phase(PhaseCommand {
            phase: Some(phase),
            sub_phase,
            flags,
        })) => run_workflow(&flags, node, Some((phase, sub_phase))),
    }
}

fn run_workflow(
    args: &InitFlagArgs,
    node: NodeOptions,
    single: Option<(String, Option<String>)>,
) -> Result<()> {
    let loaded = config::load_init(args.config.as_deref(), &args.to_flags())?;
    for warning in &loaded.warnings {
        eprintln!("W {warning}");
    }
    let profile = Profile::load(loaded.phase_configuration.as_ref(), args.config.as_deref())?;
    let mut skip = args.skip_phases.clone();
    skip.extend(loaded.effective.init.skip_phases.iter().cloned());
    tree::validate_skip_phases(&profile.slots, &skip)?;
    let dry_run = args.dry_run || loaded.effective.init.dry_run;
    let mut effective = loaded.effective;
    // kubeadm's manageSkippedAddons: a skipped addon is recorded as disabled, so the uploaded
    // ClusterConfiguration (and a later upgrade) knows it.
    if skip.iter().any(|s| s == "addon/coredns") {
        effective.cluster.dns.disabled = true;
    }
    if skip.iter().any(|s| s == "addon/kube-proxy") {
        effective.cluster.proxy.disabled = true;
    }
    let version = effective
        .cluster
        .kubernetes_version
        .clone()
        .unwrap_or_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut runner = Runner::new(
        RunOptions {
            root: node.root,
            cache_dir: node.cache_dir,
            dry_run,
            journal: node.journal,
            service_command: Some(node.service_command),
            upload_certs: args.upload_certs,
            print_certificate_key: !args.skip_certificate_key_print,
            profile,
        },
        effective,
    )?;
    let result = runtime.block_on(async {
        match &single {
            Some((phase, sub_phase)) => runner.run_phase(phase, sub_phase.as_deref(), &skip).await,
            None => {
                println!("[init] Using Kubernetes version: {version}");
                runner.run_all(&skip).await
            }
        }
    });
    if let Some(plan) = runner.take_plan() {
        if plan.is_empty() {
            println!("[dryrun] Nothing would be written");
        } else {
            print!("{}", plan.render());
        }
    }
    result
}

#[cfg(test)]
mod fuzz {
    use clap::{CommandFactory, Parser};
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::super::{Cli, Command};
    use super::*;
    use crate::fuzzing::{fuzz, odd_text};

    /// Every word of `kubeforge init`'s command line: its flags (read from the parser, so a new
    /// flag is fuzzed too), the global ones, the subcommands and the phase names.
    fn command_words(config_file: &str) -> Vec<String> {
        let cli = Cli::command();
        let init = cli.find_subcommand("init").expect("an init command");
        let flags = cli.get_arguments().chain(init.get_arguments());
        let mut words: Vec<String> = flags
            .flat_map(|arg| {
                let long = arg.get_long().map(|long| format!("--{long}"));
                let short = arg.get_short().map(|short| format!("-{short}"));
                long.into_iter().chain(short)
            })
            .collect();
        words.extend(
            [
                "init",
                "phase",
                "all",
                "component",
                "config",
                "version",
                "--",
                "-",
                "-vv",
                "--help",
            ]
            .map(String::from),
        );
        words.extend(
            tree::stock_slots()
                .iter()
                .flat_map(|slot| slot.name.split('/').map(String::from).collect::<Vec<_>>()),
        );
        words.push(format!("--config={config_file}"));
        words
    }

    #[test]
    fn command_line() {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let config_file = dir.path().join("kubeadm.yaml");
        std::fs::write(
            &config_file,
            include_str!("../../tests/configs/every-kind.yaml"),
        )
        .expect("writing the config file");
        let words = command_words(&config_file.display().to_string());
        let word = prop_oneof![
            3 => select(words.clone()),
            2 => odd_text(),
            1 => (select(words), odd_text()).prop_map(|(flag, value)| format!("{flag}={value}")),
        ];
        let argv = (
            prop::bool::weighted(0.8),
            prop::collection::vec(word, 0..12),
        );
        fuzz(argv, |(init, words)| {
            let argv = ["kubeforge"]
                .into_iter()
                .chain(init.then_some("init"))
                .map(String::from)
                .chain(words);
            let command = match Cli::try_parse_from(argv) {
                Ok(cli) => cli.command,
                Err(error) => {
                    assert!(!error.to_string().is_empty());
                    return;
                }
            };
            let Command::Init(command) = command else {
                return;
            };
            let flags = match &command.subcommand {
                None => &command.flags,
                Some(InitSubcommand::Phase(phase)) => &phase.flags,
            };
            // What `run_workflow` does first.
            match config::load_init(flags.config.as_deref(), &flags.to_flags()) {
                Ok(loaded) => {
                    serde_json::to_string(&loaded.effective).expect("the effective config is JSON");
                }
                Err(error) => assert!(!error.to_string().is_empty()),
            }
        });
        drop(dir);
    }
}
