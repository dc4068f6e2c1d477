use std::fmt;
use std::path::PathBuf;

/// Why a configuration could not be loaded. The `Display` text is what the user sees, so every
/// variant names the file, document, flag or field at fault and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to read config file {path:?}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("config file {path:?} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },

    /// A document that has the wrong shape, an unsupported kind, or an unknown field.
    #[error("config file {path:?}, document {index}{kind}: {message}", kind = describe_kind(kind))]
    Document {
        path: PathBuf,
        /// 1-based, counting every `---`-separated document.
        index: usize,
        kind: Option<String>,
        message: String,
    },

    #[error(
        "config file {path:?} has no InitConfiguration or ClusterConfiguration document; \
         add one with `apiVersion: kubeadm.k8s.io/v1beta4` (see `kubeforge config print init-defaults`)"
    )]
    NoKubeadmDocument { path: PathBuf },

    #[error("can not mix '--config' with arguments [{}]", .0.join(" "))]
    MixedArguments(Vec<String>),

    #[error("invalid value {value:?} for flag --{flag}: {reason}")]
    Flag {
        flag: &'static str,
        value: String,
        reason: String,
    },

    /// A value kubeadm would detect on the machine (node name, advertise address) could not be.
    #[error("{0}")]
    Detection(String),

    /// The InitConfiguration and ClusterConfiguration (validated together, as kubeadm does).
    #[error("{}", render_field_errors(.0))]
    Invalid(Vec<FieldError>),

    /// Another kubeadm kind of the file (`config validate`, `config migrate`).
    #[error("config file {path:?}: {}", render_problems(&format!("invalid {kind}"), errors))]
    InvalidKind {
        path: PathBuf,
        kind: &'static str,
        errors: Vec<FieldError>,
    },
}

fn describe_kind(kind: &Option<String>) -> String {
    kind.as_ref().map(|k| format!(" ({k})")).unwrap_or_default()
}

/// Validation errors as one message: `invalid configuration: <error>`, or one error a line.
pub(super) fn render_field_errors(errors: &[FieldError]) -> String {
    render_problems("invalid configuration", errors)
}

fn render_problems(what: &str, errors: &[FieldError]) -> String {
    match errors {
        [only] => format!("{what}: {only}"),
        _ => {
            let mut text = format!("{what} ({} problems):", errors.len());
            for error in errors {
                text.push_str("\n  - ");
                text.push_str(&error.to_string());
            }
            text
        }
    }
}

/// One validation failure, formatted like Kubernetes' `field.Error`:
/// `networking.serviceSubnet: Invalid value: "10.96.0.0/30": subnet with 4 address(es) is too small, the minimum is 10`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted path in the v1beta4 document, e.g. `localAPIEndpoint.bindPort`.
    pub field: String,
    /// The offending value as kubeadm prints it (strings quoted); `None` for a missing value.
    pub value: Option<String>,
    pub detail: String,
}

impl FieldError {
    pub fn invalid(
        field: impl Into<String>,
        value: impl fmt::Debug,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            value: Some(format!("{value:?}")),
            detail: detail.into(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: None,
            detail: detail.into(),
        }
    }
}

/// A list or map as Kubernetes' field errors print one: compact JSON.
pub(super) struct JsonValue<'a, T>(pub &'a T);

impl<T: serde::Serialize> fmt::Debug for JsonValue<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let json = serde_json::to_string(self.0).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "{}: Invalid value: {value}: {}", self.field, self.detail),
            None => write!(f, "{}: Required value: {}", self.field, self.detail),
        }
    }
}
