//! `kubeforge version`.

use anyhow::Result;
use clap::{Args, ValueEnum};

use crate::config::DEFAULT_KUBERNETES_VERSION;

#[derive(Args)]
pub struct VersionCommand {
    /// Output format.
    #[arg(short, long, value_enum)]
    output: Option<VersionFormat>,
}

#[derive(Clone, Copy, ValueEnum)]
enum VersionFormat {
    Short,
    Json,
    Yaml,
}

pub fn run(command: VersionCommand) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let info = serde_json::json!({
        "clientVersion": {
            "gitVersion": format!("v{version}"),
            "kubernetesVersion": DEFAULT_KUBERNETES_VERSION,
        }
    });
    match command.output {
        None => println!("kubeforge version: v{version} (Kubernetes {DEFAULT_KUBERNETES_VERSION})"),
        Some(VersionFormat::Short) => println!("v{version}"),
        Some(VersionFormat::Json) => println!("{}", serde_json::to_string_pretty(&info)?),
        Some(VersionFormat::Yaml) => print!("{}", serde_saphyr::to_string(&info)?),
    }
    Ok(())
}
