//! Reading a config file: multi-document YAML, each document dispatched on `apiVersion` +
//! `kind`, the kubeadm kinds of every API version the target release reads converted to
//! v1beta4.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use kubeforge_api::release::{DEFAULT_RELEASE, Release};
use kubeforge_api::v1beta4::{
    self, ClusterConfiguration, GROUP_VERSION, InitConfiguration, JoinConfiguration,
    ResetConfiguration, UpgradeConfiguration,
};
use kubeforge_api::{Duration, v1, v1beta3};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::api_versions::{self, ConfigApi, KUBEADM_GROUP, Reader};
use super::convert::{self, FromV1};
use super::error::{ConfigError, render_field_errors};
use super::field_hints;

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

/// How a file is read: by which command, for which release.
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadOptions {
    pub reader: Reader,
    /// The release given on the command line; else the file's ClusterConfiguration decides.
    pub release: Option<Release>,
}

impl ReadOptions {
    /// As `init` reads its `--config` (which cannot be combined with --kubernetes-version).
    pub(super) const INIT: ReadOptions = ReadOptions {
        reader: Reader::Init,
        release: None,
    };
}

/// The documents of one config file, by kind, the kubeadm ones as v1beta4 whatever version they
/// were written in; component configs stay opaque JSON because the phases that own them
/// interpret them.
#[derive(Debug, Default)]
pub(super) struct ConfigDocuments {
    pub init: Option<InitConfiguration>,
    pub cluster: Option<ClusterConfiguration>,
    pub join: Option<JoinConfiguration>,
    pub reset: Option<ResetConfiguration>,
    pub upgrade: Option<UpgradeConfiguration>,
    pub kubelet: Option<Value>,
    pub kube_proxy: Option<Value>,
    pub phase_configuration: Option<super::profile::PhaseConfiguration>,
    /// `apiServer.timeoutForControlPlane` (defaulted) when the ClusterConfiguration was
    /// v1beta3; v1beta4 has no such field, and kubeadm's commands each carry it over their own
    /// way.
    pub v1beta3_control_plane_timeout: Option<Duration>,
    /// The release the file was read for; `None` when its kubernetesVersion names none
    /// kubeforge deploys (validation reports that).
    pub release: Option<Release>,
    /// kubeadm's warnings (its deprecation warning for each v1beta3 document).
    pub warnings: Vec<String>,
}

pub(super) fn read_config_file(
    path: &Path,
    options: ReadOptions,
) -> Result<ConfigDocuments, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_config_documents(path, &text, options)
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

/// A document with its type fields read.
struct Document<'a> {
    path: &'a Path,
    /// 1-based, counting every `---`-separated document.
    index: usize,
    raw: RawDocument<'a>,
    api_version: String,
    kind: String,
    object: Map<String, Value>,
}

impl Document<'_> {
    fn error(&self, message: String) -> ConfigError {
        ConfigError::Document {
            path: self.path.to_owned(),
            index: self.index,
            kind: Some(self.kind.clone()),
            message,
        }
    }

    /// Decodes the document strictly from its own text, so errors carry YAML line numbers; a
    /// failure of a kubeadm kind also says which of its fields belong to another API version.
    /// The text has been parsed within the file's budget already; this parse costs no more
    /// than that one.
    fn decode<T: DeserializeOwned>(&self, api: Option<ConfigApi>) -> Result<T, ConfigError> {
        serde_saphyr::from_str_with_options(self.raw.text, yaml_options(MAX_FILE_VALUES)).map_err(
            |err| {
                let mut message = format!(
                    "{err} (the document starts at line {} of the file)",
                    self.raw.first_line
                );
                for hint in api
                    .map(|api| field_hints::hints(api, &self.kind, &self.object))
                    .unwrap_or_default()
                {
                    message.push_str("\n  - ");
                    message.push_str(&hint);
                }
                self.error(message)
            },
        )
    }
}

pub(super) fn parse_config_documents(
    path: &Path,
    text: &str,
    options: ReadOptions,
) -> Result<ConfigDocuments, ConfigError> {
    let documents = read_type_fields(path, text)?;
    let release = target_release(&documents, options);
    let mut parsed = ConfigDocuments {
        release: release.as_ref().ok().copied(),
        ..Default::default()
    };
    let accepted = accept_kubeadm_versions(&documents, &release, options.reader, &mut parsed)?;
    for (document, accepted) in documents.iter().zip(accepted) {
        let kind = document.kind.as_str();
        if let Some(api) = accepted {
            if !api.kinds().contains(&kind) {
                return Err(document.error(unknown_kind(api, kind)));
            }
            read_kubeadm_kind(document, api, &mut parsed)?;
            continue;
        }
        match document.api_version.as_str() {
            KUBELET_CONFIG_VERSION if kind == "KubeletConfiguration" => store_once(
                &mut parsed.kubelet,
                Value::Object(document.object.clone()),
                document,
            )?,
            KUBE_PROXY_CONFIG_VERSION if kind == "KubeProxyConfiguration" => store_once(
                &mut parsed.kube_proxy,
                Value::Object(document.object.clone()),
                document,
            )?,
            PHASE_CONFIG_VERSION if kind == "PhaseConfiguration" => store_once(
                &mut parsed.phase_configuration,
                document.decode(None)?,
                document,
            )?,
            _ => {
                return Err(document.error(format!(
                    "unsupported apiVersion {:?} with kind {kind:?}; supported are the kubeadm \
                     kinds ({GROUP_VERSION} InitConfiguration, ClusterConfiguration, \
                     JoinConfiguration, ResetConfiguration and UpgradeConfiguration), \
                     {KUBELET_CONFIG_VERSION} KubeletConfiguration, \
                     {KUBE_PROXY_CONFIG_VERSION} KubeProxyConfiguration and \
                     {PHASE_CONFIG_VERSION} PhaseConfiguration",
                    document.api_version
                )));
            }
        }
    }
    Ok(parsed)
}

/// Judges the `apiVersion` of every kubeadm document before any is decoded, in kubeadm's order
/// (sorted by `<group>/<version>, Kind=<kind>`), so the first refused and the order of the
/// warnings are kubeadm's; the API to decode each document with, `None` for other groups.
fn accept_kubeadm_versions(
    documents: &[Document<'_>],
    release: &Result<Release, String>,
    reader: Reader,
    parsed: &mut ConfigDocuments,
) -> Result<Vec<Option<ConfigApi>>, ConfigError> {
    let mut in_kubeadms_order: Vec<(String, usize)> = documents
        .iter()
        .enumerate()
        .filter(|(_, document)| {
            document
                .api_version
                .starts_with(&format!("{KUBEADM_GROUP}/"))
        })
        .map(|(position, document)| {
            let gvk = format!("{}, Kind={}", document.api_version, document.kind);
            (gvk, position)
        })
        .collect();
    in_kubeadms_order.sort();
    let mut accepted = vec![None; documents.len()];
    for (_, position) in in_kubeadms_order {
        let document = &documents[position];
        let verdict = api_versions::accept(
            &document.api_version,
            &document.kind,
            release.as_ref().copied().map_err(String::as_str),
            reader,
        )
        .map_err(|message| document.error(message))?;
        parsed.warnings.extend(verdict.warning);
        accepted[position] = Some(verdict.api);
    }
    Ok(accepted)
}

/// Splits the file and reads each document's `apiVersion` and `kind`, within one budget of
/// values for the whole file; empty documents are skipped.
fn read_type_fields<'a>(path: &'a Path, text: &'a str) -> Result<Vec<Document<'a>>, ConfigError> {
    let values_left = Rc::new(Cell::new(MAX_FILE_VALUES));
    let mut documents = Vec::new();
    for (position, raw) in split_documents(text).into_iter().enumerate() {
        let index = position + 1;
        let untyped_error = |message: String| ConfigError::Document {
            path: path.to_owned(),
            index,
            kind: None,
            message,
        };
        let counter = Rc::clone(&values_left);
        let options = yaml_options(values_left.get()).with_budget_report(move |report| {
            counter.set(counter.get().saturating_sub(report.nodes));
        });
        let value: Value =
            serde_saphyr::from_str_with_options(raw.text, options).map_err(|err| {
                if over_value_budget(&err) {
                    untyped_error(format!(
                        "the file reaches more than {MAX_FILE_VALUES} YAML values here \
                         (counting those aliases repeat), far more than a kubeadm config has \
                         (the document starts at line {})",
                        raw.first_line
                    ))
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
                return Err(untyped_error(
                    "expected a mapping with apiVersion and kind".into(),
                ));
            }
        };
        let type_field = |name: &str| match object.get(name) {
            Some(Value::String(text)) if !text.is_empty() => Ok(text.clone()),
            _ => Err(untyped_error(format!(
                "missing {name}; every document needs `apiVersion` and `kind`, \
                 e.g. `apiVersion: {GROUP_VERSION}` and `kind: InitConfiguration`"
            ))),
        };
        let api_version = type_field("apiVersion")?;
        let kind = type_field("kind")?;
        documents.push(Document {
            path,
            index,
            raw,
            api_version,
            kind,
            object,
        });
    }
    Ok(documents)
}

/// The release whose kubeadm reads the file: the one given on the command line, else the one
/// the ClusterConfiguration's kubernetesVersion names (in any API version), else the default.
/// The error says why the file's version names none kubeforge deploys.
fn target_release(documents: &[Document<'_>], options: ReadOptions) -> Result<Release, String> {
    if let Some(release) = options.release {
        return Ok(release);
    }
    let requested = documents.iter().find_map(|document| {
        let kubeadm = document
            .api_version
            .starts_with(&format!("{KUBEADM_GROUP}/"));
        match document.object.get("kubernetesVersion") {
            Some(Value::String(version)) if kubeadm && document.kind == "ClusterConfiguration" => {
                Some((document.index, version))
            }
            _ => None,
        }
    });
    match requested {
        None => Ok(DEFAULT_RELEASE),
        Some((index, version)) => Release::of_request(version).map_err(|why| {
            format!(
                "the ClusterConfiguration (document {index}) sets kubernetesVersion {version:?}: \
                 {why}"
            )
        }),
    }
}

/// Decodes a kubeadm document of a version and kind the release reads, and stores it as
/// v1beta4.
fn read_kubeadm_kind(
    document: &Document<'_>,
    api: ConfigApi,
    parsed: &mut ConfigDocuments,
) -> Result<(), ConfigError> {
    match (api, document.kind.as_str()) {
        (ConfigApi::V1beta4, "InitConfiguration") => {
            store_once(&mut parsed.init, document.decode(Some(api))?, document)
        }
        (ConfigApi::V1beta4, "ClusterConfiguration") => {
            store_once(&mut parsed.cluster, document.decode(Some(api))?, document)
        }
        (ConfigApi::V1beta4, "JoinConfiguration") => {
            store_once(&mut parsed.join, document.decode(Some(api))?, document)
        }
        (ConfigApi::V1beta4, "ResetConfiguration") => {
            store_once(&mut parsed.reset, document.decode(Some(api))?, document)
        }
        (ConfigApi::V1beta4, "UpgradeConfiguration") => {
            store_once(&mut parsed.upgrade, document.decode(Some(api))?, document)
        }
        (ConfigApi::V1beta3, "InitConfiguration") => {
            let init: v1beta3::InitConfiguration = document.decode(Some(api))?;
            store_once(&mut parsed.init, convert::init_from_v1beta3(init), document)
        }
        (ConfigApi::V1beta3, "ClusterConfiguration") => {
            let cluster: v1beta3::ClusterConfiguration = document.decode(Some(api))?;
            let (cluster, timeout) = convert::cluster_from_v1beta3(cluster);
            store_once(&mut parsed.cluster, cluster, document)?;
            parsed.v1beta3_control_plane_timeout = Some(timeout);
            Ok(())
        }
        (ConfigApi::V1beta3, "JoinConfiguration") => {
            let join: v1beta3::JoinConfiguration = document.decode(Some(api))?;
            store_once(&mut parsed.join, convert::join_from_v1beta3(join), document)
        }
        (ConfigApi::V1, "InitConfiguration") => {
            let mut from_v1 = FromV1::default();
            let init = from_v1.init(document.decode::<v1::InitConfiguration>(Some(api))?);
            merge_methods_checked(document, from_v1)?;
            store_once(&mut parsed.init, init, document)
        }
        (ConfigApi::V1, "ClusterConfiguration") => {
            let mut from_v1 = FromV1::default();
            let cluster = from_v1.cluster(document.decode::<v1::ClusterConfiguration>(Some(api))?);
            merge_methods_checked(document, from_v1)?;
            store_once(&mut parsed.cluster, cluster, document)
        }
        (ConfigApi::V1, "JoinConfiguration") => {
            let mut from_v1 = FromV1::default();
            let join = from_v1.join(document.decode::<v1::JoinConfiguration>(Some(api))?);
            merge_methods_checked(document, from_v1)?;
            store_once(&mut parsed.join, join, document)
        }
        (ConfigApi::V1, "ResetConfiguration") => {
            let reset: v1::ResetConfiguration = document.decode(Some(api))?;
            store_once(&mut parsed.reset, convert::reset_from_v1(reset), document)
        }
        (ConfigApi::V1, "UpgradeConfiguration") => {
            let upgrade: v1::UpgradeConfiguration = document.decode(Some(api))?;
            store_once(
                &mut parsed.upgrade,
                convert::upgrade_from_v1(upgrade),
                document,
            )
        }
        (api, kind) => Err(document.error(unknown_kind(api, kind))),
    }
}

/// kubeadm validates a v1 argument's `mergeMethod` with the rest of its kind; v1beta4 has no
/// such field, so kubeforge checks it while converting and reports it for the document.
fn merge_methods_checked(document: &Document<'_>, from_v1: FromV1) -> Result<(), ConfigError> {
    match from_v1.errors.as_slice() {
        [] => Ok(()),
        errors => Err(document.error(render_field_errors(errors))),
    }
}

fn unknown_kind(api: ConfigApi, kind: &str) -> String {
    let kinds = api.kinds();
    let (last, rest) = kinds.split_last().expect("every API version has kinds");
    let mut message = format!(
        "unknown kind {kind:?} in {}, whose kinds are {} and {last}",
        api.group_version(),
        rest.join(", ")
    );
    if api == ConfigApi::V1beta3 && ConfigApi::V1beta4.kinds().contains(&kind) {
        message.push_str(&format!(
            "; {kind} exists from {} on: write it as that version",
            v1beta4::GROUP_VERSION
        ));
    }
    message
}

/// Stores a kind's document; kubeadm allows each kind once per file, whatever its version.
fn store_once<T>(
    slot: &mut Option<T>,
    value: T,
    document: &Document<'_>,
) -> Result<(), ConfigError> {
    if slot.is_some() {
        return Err(document
            .error("this kind is specified twice in the file; keep one document per kind".into()));
    }
    *slot = Some(value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ConfigDocuments, ConfigError> {
        parse_config_documents(Path::new("/tmp/kubeadm.yaml"), text, ReadOptions::INIT)
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
    fn join_reset_and_upgrade_are_read_strictly_too() {
        let documents = parse(
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery: {}\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\nforce: true\n---\n\
             apiVersion: kubeadm.k8s.io/v1beta4\nkind: UpgradeConfiguration\n",
        )
        .unwrap();
        assert!(documents.init.is_none() && documents.join.is_some());
        assert!(documents.reset.unwrap().force && documents.upgrade.is_some());
        let message =
            error("apiVersion: kubeadm.k8s.io/v1beta4\nkind: ResetConfiguration\nforse: true\n");
        assert!(
            message.contains("document 1 (ResetConfiguration)") && message.contains("forse"),
            "{message}"
        );
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
