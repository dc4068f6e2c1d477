//! `kubeforge config`.

use anyhow::Result;
use clap::{Args, Subcommand};

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
}

#[derive(Subcommand)]
enum PrintWhat {
    /// Print default init configuration, that can be used for 'kubeforge init' and 'kubeadm init'.
    InitDefaults,
}

pub fn run(command: ConfigCommand) -> Result<()> {
    match command.command {
        ConfigSubcommand::Print {
            what: PrintWhat::InitDefaults,
        } => print!("{}", crate::config::init_defaults_yaml()),
    }
    Ok(())
}
