//! Reading a `--config` file: multi-document YAML, dispatched on `apiVersion` + `kind`.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use kubeforge_api::v1beta4::{
    ClusterConfiguration, ClusterConfigurationKind, GROUP_VERSION, InitConfiguration,
    InitConfigurationKind,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::ConfigError;

const KUBEADM_GROUP: &str = "kubeadm.k8s.io";
const KUBELET_CONFIG_VERSION: &str = "kubelet.config.k8s.io/v1beta1";
const KUBE_PROXY_CONFIG_VERSION: &str = "kubeproxy.config.k8s.io/v1alpha1";
const PHASE_CONFIG_VERSION: &str = "kubeforge.dev/v1alpha1";

/// The YAML values one config file may hold, all its documents together, an alias counting as
/// the values it repeats. A kubeadm config file with every kind written out in full has a few
/// hundred. The parser's own budget is 250 000 values per document, and an alias bomb of a few
/// hundred bytes within it holds about 1 KiB per value while it expands (345 bytes, 78 125
/// values: 76 MiB); kinds that `init` ignores can repeat, so a file of such documents cost
/// that again for each (100 in 37 KB: 7.6 s in a release build).
const MAX_FILE_VALUES: usize = 20_000;

/// The documents of one config file, by kind; component configs stay opaque JSON because the
/// phases that own them interpret them.
#[derive(Debug, Default)]
pub(super) struct ConfigDocuments {
    pub init: Option<InitConfiguration>,
    pub cluster: Option<ClusterConfiguration>,
    pub kubelet: Option<Value>,
    pub kube_proxy: Option<Value>,
    pub phase_configuration: Option<super::profile::PhaseConfiguration>,
    pub warnings: Vec<String>,
}

pub(super) fn read_config_file(path: &Path) -> Result<ConfigDocuments, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_config_documents(path, &text)
}

/// One `---`-separated document: its text and the file line it starts on (1-based).
struct RawDocument<'a> {
    text: &'a str,
    first_line: usize,
}

/// Splits on separator lines the way Kubernetes' YAML reader does: a line starting with `---`
/// ends the current document (text after the marker on that line is ignored).
fn split_documents(text: &str) -> Vec<RawDocument<'_>> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut first_line = 1;
    let mut offset = 0;
    for (line_number, line) in (1..).zip(text.split_inclusive('\n')) {
        if line.starts_with("---") {
            documents.push(RawDocument {
                text: &text[start..offset],
                first_line,
            });
            start = offset + line.len();
            first_line = line_number + 1;
        }
        offset += line.len();
    }
    documents.push(RawDocument {
        text: &text[start..],
        first_line,
    });
    documents
}

/// The parser's options for a document that may hold `max_values` values.
fn yaml_options(max_values: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = max_values;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Whether the parser stopped at the budget of [`yaml_options`] (the error may be wrapped in
/// the alias that was being expanded and in a snippet of the text).
fn over_value_budget(error: &serde_saphyr::Error) -> bool {
    match error {
        serde_saphyr::Error::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Nodes { .. },
            ..
        } => true,
        serde_saphyr::Error::AliasError { error, .. }
        | serde_saphyr::Error::WithSnippet { error, .. } => over_value_budget(error),
        _ => false,
    }
}

pub(super) fn parse_config_documents(
    path: &Path,
    text: &str,
) -> Result<ConfigDocuments, ConfigError> {
    let mut parsed = ConfigDocuments::default();
    let values_left = Rc::new(Cell::new(MAX_FILE_VALUES));
    for (position, raw) in split_documents(text).iter().enumerate() {
        let index = position + 1;
        let document_error = |kind: Option<&str>, message: String| ConfigError::Document {
            path: path.to_owned(),
            index,
            kind: kind.map(str::to_owned),
            message,
        };
        let counter = Rc::clone(&values_left);
        let options = yaml_options(values_left.get()).with_budget_report(move |report| {
            counter.set(counter.get().saturating_sub(report.nodes));
        });
        let value: Value = serde_saphyr::from_str_with_options(raw.text, options).map_err(|err| {
            if over_value_budget(&err) {
                document_error(
                    None,
                    format!(
                        "the file reaches more than {MAX_FILE_VALUES} YAML values here (counting \
                         those aliases repeat), far more than a kubeadm config has (the document \
                         starts at line {})",
                        raw.first_line
                    ),
                )
            } else {
                ConfigError::Yaml {
                    path: path.to_owned(),
                    message: format!(
                        "document {index} (starting at line {}): {err}",
                        raw.first_line
                    ),
                }
            }
        })?;
        let object = match value {
            Value::Null => continue,
            Value::Object(object) => object,
            _ => {
                return Err(document_error(
                    None,
                    "expected a mapping with apiVersion and kind".into(),
                ));
            }
        };
        let type_field = |name: &str| match object.get(name) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            _ => Err(document_error(
                None,
                format!(
                    "missing {name}; every document needs `apiVersion` and `kind`, \
                     e.g. `apiVersion: {GROUP_VERSION}` and `kind: InitConfiguration`"
                ),
            )),
        };
        let api_version = type_field("apiVersion")?;
        let kind = type_field("kind")?;
        let kind_error = |message: String| document_error(Some(&kind), message);

        match (api_version.as_str(), kind.as_str()) {
            (GROUP_VERSION, InitConfigurationKind::NAME) => store_once(
                &mut parsed.init,
                decode_typed(raw, &kind_error)?,
                &kind_error,
            )?,
            (GROUP_VERSION, ClusterConfigurationKind::NAME) => store_once(
                &mut parsed.cluster,
                decode_typed(raw, &kind_error)?,
                &kind_error,
            )?,
            (
                GROUP_VERSION,
                "JoinConfiguration" | "ResetConfiguration" | "UpgradeConfiguration",
            ) => {
                parsed.warnings.push(format!(
                    "config file {path:?}, document {index}: ignoring {kind}, which `init` does not use"
                ));
            }
            (GROUP_VERSION, _) => {
                return Err(kind_error(format!(
                    "unknown kind {kind:?} in {GROUP_VERSION}; `init` reads InitConfiguration \
                     and ClusterConfiguration"
                )));
            }
            (version, _) if version.starts_with(&format!("{KUBEADM_GROUP}/")) => {
                return Err(kind_error(old_or_unknown_kubeadm_version(version, &kind)));
            }
            (KUBELET_CONFIG_VERSION, "KubeletConfiguration") => {
                store_once(&mut parsed.kubelet, Value::Object(object), &kind_error)?
            }
            (KUBE_PROXY_CONFIG_VERSION, "KubeProxyConfiguration") => {
                store_once(&mut parsed.kube_proxy, Value::Object(object), &kind_error)?
            }
            (PHASE_CONFIG_VERSION, "PhaseConfiguration") => store_once(
                &mut parsed.phase_configuration,
                decode_typed(raw, &kind_error)?,
                &kind_error,
            )?,
            _ => {
                return Err(kind_error(format!(
                    "unsupported apiVersion {api_version:?} with kind {kind:?}; supported are \
                     {GROUP_VERSION} InitConfiguration and ClusterConfiguration, \
                     {KUBELET_CONFIG_VERSION} KubeletConfiguration, \
                     {KUBE_PROXY_CONFIG_VERSION} KubeProxyConfiguration and \
                     {PHASE_CONFIG_VERSION} PhaseConfiguration"
                )));
            }
        }
    }
    Ok(parsed)
}

/// Decodes a document strictly from its own text, so errors carry YAML line numbers. The text
/// has been parsed within the file's budget already; this parse costs no more than that one.
fn decode_typed<T: DeserializeOwned>(
    raw: &RawDocument<'_>,
    kind_error: &dyn Fn(String) -> ConfigError,
) -> Result<T, ConfigError> {
    serde_saphyr::from_str_with_options(raw.text, yaml_options(MAX_FILE_VALUES)).map_err(|err| {
        kind_error(format!(
            "{err} (the document starts at line {} of the file)",
            raw.first_line
        ))
    })
}

fn store_once<T>(
    slot: &mut Option<T>,
    value: T,
    kind_error: &dyn Fn(String) -> ConfigError,
) -> Result<(), ConfigError> {
    if slot.is_some() {
        return Err(kind_error(
            "this kind is specified twice in the file; keep one document per kind".into(),
        ));
    }
    *slot = Some(value);
    Ok(())
}

fn old_or_unknown_kubeadm_version(version: &str, kind: &str) -> String {
    match version.strip_prefix(&format!("{KUBEADM_GROUP}/")) {
        Some("v1beta3" | "v1beta2" | "v1beta1" | "v1alpha3" | "v1alpha2" | "v1alpha1") => format!(
            "{version} is an older kubeadm config API; kubeforge reads only {GROUP_VERSION}. \
             Convert the file with `kubeadm config migrate --old-config <old.yaml> --new-config <new.yaml>` \
             (kind {kind})"
        ),
        _ => format!(
            "unknown kubeadm config API version {version:?}; kubeforge reads {GROUP_VERSION}"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigDocuments, ConfigError> {
        parse_config_documents(Path::new("/tmp/kubeadm.yaml"), text)
    }

    fn error(text: &str) -> String {
        parse(text).expect_err("should fail").to_string()
    }

    #[test]
    fn reads_every_supported_kind() {
        let documents = parse(
            "apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.0.0.1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking:
  podSubnet: 10.244.0.0/16
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: ipvs
---
apiVersion: kubeforge.dev/v1alpha1
kind: PhaseConfiguration
phases:
- slot: addon/coredns
  component: builtin:kube-dns
---
",
        )
        .unwrap();
        let init = documents.init.unwrap();
        assert_eq!(
            init.local_api_endpoint.advertise_address.as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            documents.cluster.unwrap().networking.pod_subnet.as_deref(),
            Some("10.244.0.0/16")
        );
        assert_eq!(documents.kubelet.unwrap()["cgroupDriver"], "systemd");
        assert_eq!(documents.kube_proxy.unwrap()["mode"], "ipvs");
        assert_eq!(
            documents.phase_configuration.unwrap().phases[0].component,
            "builtin:kube-dns"
        );
        assert!(documents.warnings.is_empty());
    }

    #[test]
    fn unknown_field_names_the_field_the_file_and_the_document() {
        let message = error(
            "apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAdress: 10.0.0.1
",
        );
        assert!(message.contains("/tmp/kubeadm.yaml"), "{message}");
        assert!(
            message.contains("document 2 (InitConfiguration)"),
            "{message}"
        );
        assert!(message.contains("advertiseAdress"), "{message}");
        assert!(
            message.contains("starts at line 4 of the file"),
            "{message}"
        );
    }

    #[test]
    fn old_api_versions_point_at_migrate() {
        let message = error("apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n");
        assert!(message.contains("kubeadm config migrate"), "{message}");
        assert!(message.contains("document 1"), "{message}");
    }

    #[test]
    fn unknown_kinds_and_missing_type_fields_are_errors() {
        let message = error("apiVersion: v1\nkind: ConfigMap\n");
        assert!(
            message.contains("unsupported apiVersion \"v1\""),
            "{message}"
        );
        let message = error("kind: InitConfiguration\n");
        assert!(message.contains("missing apiVersion"), "{message}");
        let message = error("apiVersion: kubeadm.k8s.io/v1beta4\n");
        assert!(message.contains("missing kind"), "{message}");
        let message = error("- a\n- b\n");
        assert!(message.contains("expected a mapping"), "{message}");
        let message = error("apiVersion: kubeadm.k8s.io/v1beta4\nkind: Frobnicator\n");
        assert!(
            message.contains("unknown kind \"Frobnicator\""),
            "{message}"
        );
        let message = error("apiVersion: kubeadm.k8s.io/v9\nkind: InitConfiguration\n");
        assert!(
            message.contains("unknown kubeadm config API version"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_kinds_are_rejected() {
        let message = error(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n",
        );
        assert!(
            message.contains("document 2") && message.contains("twice"),
            "{message}"
        );
    }

    #[test]
    fn other_kubeadm_kinds_are_ignored_with_a_warning() {
        let documents =
            parse("apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery: {}\n")
                .unwrap();
        assert!(documents.init.is_none());
        assert_eq!(documents.warnings.len(), 1);
        assert!(documents.warnings[0].contains("JoinConfiguration"));
    }

    #[test]
    fn invalid_yaml_names_the_document_and_line() {
        let message = error(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\n---\nfoo: [unclosed\n",
        );
        assert!(message.contains("not valid YAML"), "{message}");
        assert!(
            message.contains("document 2 (starting at line 4)"),
            "{message}"
        );
    }

    #[test]
    fn separators_split_like_kubernetes() {
        let raw = split_documents("a: 1\n--- # comment\nb: 2\n---\n");
        let texts: Vec<_> = raw.iter().map(|d| (d.text, d.first_line)).collect();
        assert_eq!(texts, vec![("a: 1\n", 1), ("b: 2\n", 3), ("", 5)]);
    }
}
