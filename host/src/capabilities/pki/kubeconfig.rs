//! Kubeconfig files with embedded client credentials, laid out as kubeadm (client-go) writes them.

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::runtime::bindings::kubeforge::phase::pki::KubeconfigSpec;

// Written as client-go writes kubeconfigs: JSON, then YAML with sorted keys (kubeforge_api::yaml).
// No `preferences`: client-go v0.35 omits the empty struct (`json:"preferences,omitzero"`).
#[derive(Serialize, Deserialize)]
struct Kubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    clusters: Vec<NamedCluster>,
    contexts: Vec<NamedContext>,
    #[serde(rename = "current-context")]
    current_context: String,
    kind: String,
    users: Vec<NamedUser>,
}

#[derive(Serialize, Deserialize)]
struct NamedCluster {
    cluster: Cluster,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Cluster {
    #[serde(rename = "certificate-authority-data")]
    certificate_authority_data: String,
    server: String,
}

#[derive(Serialize, Deserialize)]
struct NamedContext {
    context: Context_,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Context_ {
    cluster: String,
    user: String,
}

#[derive(Serialize, Deserialize)]
struct NamedUser {
    name: String,
    user: User,
}

#[derive(Serialize, Deserialize)]
struct User {
    #[serde(rename = "client-certificate-data", default)]
    client_certificate_data: String,
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    client_key_data: String,
}

/// The kubeconfig YAML for `spec`, embedding `key_pem`.
pub fn render(spec: &KubeconfigSpec, key_pem: &str) -> Result<String> {
    // YAML 1.1 (client-go's reader, and the writer kubeforge_api::yaml follows) takes these
    // for line breaks, YAML 1.2 (`inspect`'s) for text: a name with one would read back as
    // another name. The PEM fields are written as base64.
    for (field, value) in [
        ("cluster-name", &spec.cluster_name),
        ("server", &spec.server),
        ("user-name", &spec.user_name),
    ] {
        if value.contains(['\u{85}', '\u{2028}', '\u{2029}']) {
            bail!("kubeconfig {field} {value:?} has a line separator (U+0085, U+2028 or U+2029)");
        }
    }
    let context = format!("{}@{}", spec.user_name, spec.cluster_name);
    let config = Kubeconfig {
        api_version: "v1".into(),
        clusters: vec![NamedCluster {
            cluster: Cluster {
                certificate_authority_data: STANDARD.encode(&spec.certificate_authority_pem),
                server: spec.server.clone(),
            },
            name: spec.cluster_name.clone(),
        }],
        contexts: vec![NamedContext {
            context: Context_ {
                cluster: spec.cluster_name.clone(),
                user: spec.user_name.clone(),
            },
            name: context.clone(),
        }],
        current_context: context,
        kind: "Config".into(),
        users: vec![NamedUser {
            name: spec.user_name.clone(),
            user: User {
                client_certificate_data: STANDARD.encode(&spec.client_certificate_pem),
                client_key_data: STANDARD.encode(key_pem),
            },
        }],
    };
    let value = serde_json::to_value(&config).context("rendering kubeconfig")?;
    Ok(kubeforge_api::yaml::to_string(&value))
}

/// The YAML values a kubeconfig may hold. kubeadm's have fifteen; one with many contexts a few
/// hundred. Phases can write the files this reads, and the parser's own budget (250 000 values)
/// let a kubeconfig of a few hundred bytes whose ignored fields are nested aliases hold 58 MiB.
const MAX_KUBECONFIG_VALUES: usize = 10_000;

/// The non-secret parts of a kubeconfig: its current context's cluster and user.
pub fn inspect(text: &str) -> Result<KubeconfigSpec> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = MAX_KUBECONFIG_VALUES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    let config: Kubeconfig =
        serde_saphyr::from_str_with_options(text, options).context("parsing kubeconfig")?;
    let context = config
        .contexts
        .iter()
        .find(|c| c.name == config.current_context)
        .ok_or_else(|| {
            anyhow!(
                "its current context {:?} does not exist",
                config.current_context
            )
        })?;
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == context.context.cluster)
        .ok_or_else(|| anyhow!("its cluster {:?} does not exist", context.context.cluster))?;
    let user = config
        .users
        .iter()
        .find(|u| u.name == context.context.user)
        .ok_or_else(|| anyhow!("its user {:?} does not exist", context.context.user))?;
    let decode = |field: &str, value: &str| -> Result<String> {
        let bytes = STANDARD
            .decode(value)
            .with_context(|| format!("{field} is not base64"))?;
        String::from_utf8(bytes).with_context(|| format!("{field} is not PEM text"))
    };
    Ok(KubeconfigSpec {
        cluster_name: context.context.cluster.clone(),
        server: cluster.cluster.server.clone(),
        certificate_authority_pem: decode(
            "certificate-authority-data",
            &cluster.cluster.certificate_authority_data,
        )?,
        user_name: context.context.user.clone(),
        client_certificate_pem: decode(
            "client-certificate-data",
            &user.user.client_certificate_data,
        )?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_client_go_and_reads_back_without_the_key() {
        let spec = KubeconfigSpec {
            cluster_name: "kubernetes".into(),
            server: "https://10.0.0.1:6443".into(),
            certificate_authority_pem: "CA".into(),
            user_name: "system:node:n1".into(),
            client_certificate_pem: "CERT".into(),
        };
        let text = render(&spec, "KEY").unwrap();
        let expected = "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: Q0E=\n    server: https://10.0.0.1:6443\n  name: kubernetes\ncontexts:\n- context:\n    cluster: kubernetes\n    user: system:node:n1\n  name: system:node:n1@kubernetes\ncurrent-context: system:node:n1@kubernetes\nkind: Config\nusers:\n- name: system:node:n1\n  user:\n    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n";
        assert_eq!(text, expected);
        let read = inspect(&text).unwrap();
        assert_eq!(read.server, spec.server);
        assert_eq!(read.user_name, spec.user_name);
        assert_eq!(read.certificate_authority_pem, "CA");
        assert_eq!(read.client_certificate_pem, "CERT");
    }
}
