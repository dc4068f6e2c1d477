//! `kubeforge config`: `print init-defaults`, `validate` and `migrate`, as kubeadm's, for any
//! release of the window (`--kubernetes-version` picks which release's kubeadm to act as).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use kubeforge_api::release::{DEFAULT_KUBERNETES_VERSION, Release};

use crate::config::{MigrateOptions, ValidateOptions};

#[derive(Args)]
pub struct ConfigCommand {
    #[command(subcommand)]
    command: ConfigSubcommand,
}

#[derive(Subcommand)]
enum ConfigSubcommand {
    /// Print configuration.
    Print {
        #[command(subcommand)]
        what: PrintWhat,
    },
    /// Read an older version of the kubeadm configuration API types from a file, and output the
    /// similar config object for the newer version (kubeadm.k8s.io/v1beta4).
    Migrate(MigrateArgs),
    /// Read a file containing the kubeadm configuration API and report any validation problems.
    Validate(ValidateArgs),
}

#[derive(Subcommand)]
enum PrintWhat {
    /// Print default init configuration, that can be used for 'kubeforge init' and 'kubeadm init'.
    InitDefaults {
        /// Print what the kubeadm of this Kubernetes release prints (a version or a label such
        /// as "stable-1.36"; no network lookup).
        #[arg(long, value_name = "VERSION", default_value = DEFAULT_KUBERNETES_VERSION)]
        kubernetes_version: String,
    },
}

#[derive(Args)]
struct MigrateArgs {
    /// Path to the kubeadm config file that is using an old API version and should be
    /// converted. This flag is mandatory.
    #[arg(long, value_name = "FILE")]
    old_config: Option<PathBuf>,
    /// Path to the resulting equivalent kubeadm config file using the new API version.
    /// Optional, if not specified output will be sent to STDOUT.
    #[arg(long, value_name = "FILE")]
    new_config: Option<PathBuf>,
    /// Allow migration to experimental, unreleased APIs.
    #[arg(long)]
    allow_experimental_api: bool,
    /// Act as the kubeadm of this Kubernetes release (a version or a label such as
    /// "stable-1.36") [default: the file's kubernetesVersion, else the default release].
    #[arg(long, value_name = "VERSION")]
    kubernetes_version: Option<String>,
}

#[derive(Args)]
struct ValidateArgs {
    /// Path to a kubeadm configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Allow validation of deprecated APIs.
    #[arg(long)]
    allow_deprecated_api: bool,
    /// Allow validation of experimental, unreleased APIs.
    #[arg(long)]
    allow_experimental_api: bool,
    /// Act as the kubeadm of this Kubernetes release (a version or a label such as
    /// "stable-1.36") [default: the file's kubernetesVersion, else the default release].
    #[arg(long, value_name = "VERSION")]
    kubernetes_version: Option<String>,
}

pub fn run(command: ConfigCommand) -> Result<()> {
    match command.command {
        ConfigSubcommand::Print {
            what: PrintWhat::InitDefaults { kubernetes_version },
        } => {
            let release = Release::of_request(&kubernetes_version)
                .map_err(|err| anyhow!("--kubernetes-version: {err}"))?;
            print!("{}", crate::config::init_defaults_yaml(release));
        }
        ConfigSubcommand::Migrate(args) => migrate(args)?,
        ConfigSubcommand::Validate(args) => {
            let Some(path) = args.config else {
                bail!("the --config flag is mandatory");
            };
            let options = ValidateOptions {
                kubernetes_version: args.kubernetes_version,
                allow_deprecated_api: args.allow_deprecated_api,
                allow_experimental_api: args.allow_experimental_api,
            };
            for warning in crate::config::validate_config(&path, &options)? {
                eprintln!("W {warning}");
            }
            println!("ok");
        }
    }
    Ok(())
}

fn migrate(args: MigrateArgs) -> Result<()> {
    let Some(old_config) = args.old_config else {
        bail!("the --old-config flag is mandatory");
    };
    if let Some(new_config) = &args.new_config {
        refuse_same_file(&old_config, new_config)?;
    }
    let options = MigrateOptions {
        kubernetes_version: args.kubernetes_version,
        allow_experimental_api: args.allow_experimental_api,
    };
    let migrated = crate::config::migrate_config(&old_config, &options)?;
    for warning in &migrated.warnings {
        eprintln!("W {warning}");
    }
    match &args.new_config {
        None => print!("{}", migrated.yaml),
        // Atomic, unlike kubeadm's plain write: an interrupted migrate leaves the old file.
        Some(new_config) => {
            crate::effects::atomic::write_file(new_config, migrated.yaml.as_bytes(), 0o644)
                .with_context(|| {
                    format!(
                        "failed to write the new configuration to the file {:?}",
                        new_config.display().to_string()
                    )
                })?
        }
    }
    Ok(())
}

/// Refuses to write the migrated file over the old one (kubeadm does not check): migrate writes
/// only the kubeadm kinds, so the rest of the old file (component configs, a
/// PhaseConfiguration) would be lost with it.
fn refuse_same_file(old_config: &Path, new_config: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let identity = |path: &Path| std::fs::metadata(path).map(|meta| (meta.dev(), meta.ino()));
    if let (Ok(old), Ok(new)) = (identity(old_config), identity(new_config))
        && old == new
    {
        bail!(
            "--new-config {} is the file --old-config reads; migrate writes only the kubeadm \
             kinds, so writing over it would lose the rest of it: write the new configuration \
             to another file",
            new_config.display()
        );
    }
    Ok(())
}
