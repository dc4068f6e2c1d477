//! `kubeforge version`.

use anyhow::Result;
use clap::{Args, ValueEnum};

use kubeforge_api::release::{DEFAULT_KUBERNETES_VERSION, RELEASES, Release};

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
    // kubeadm deploys its own release; kubeforge deploys the newest patch it knows of each.
    let releases: Vec<String> = RELEASES.iter().map(Release::newest_version).collect();
    let info = serde_json::json!({
        "clientVersion": {
            "gitVersion": format!("v{version}"),
            "kubernetesVersion": DEFAULT_KUBERNETES_VERSION,
            "kubernetesVersions": releases,
        }
    });
    match command.output {
        None => println!(
            "kubeforge version: v{version} (Kubernetes {DEFAULT_KUBERNETES_VERSION}; deploys {})",
            Release::window()
        ),
        Some(VersionFormat::Short) => println!("v{version}"),
        Some(VersionFormat::Json) => println!("{}", serde_json::to_string_pretty(&info)?),
        Some(VersionFormat::Yaml) => print!("{}", serde_saphyr::to_string(&info)?),
    }
    Ok(())
}
