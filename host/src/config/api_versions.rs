//! Which kubeadm config API versions the kubeadm of each release reads, and what it says about
//! the others: kubeadm's `validateSupportedVersion` (util/config/common.go), per release, plus
//! kubeforge's hints where kubeforge can do more than that one kubeadm.

use kubeforge_api::release::{RELEASES, Release};
use kubeforge_api::{v1, v1beta3, v1beta4};

/// The group of every kubeadm config kind.
pub(super) const KUBEADM_GROUP: &str = "kubeadm.k8s.io";

/// The command reading a config file: kubeadm lets each read different API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reader {
    /// `init` (and every command that reads an InitConfiguration): never the experimental API,
    /// always kubeadm's deprecation warning.
    Init,
    /// `config validate`.
    Validate {
        allow_deprecated_api: bool,
        allow_experimental_api: bool,
    },
    /// `config migrate`: never warns about a deprecated API (migrating away is the point).
    Migrate { allow_experimental_api: bool },
}

/// A kubeadm config API version kubeforge decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ConfigApi {
    V1beta4,
    /// Deprecated; read for v1.35 and v1.36 only.
    V1beta3,
    /// Experimental; read for v1.37, by `config validate` and `config migrate` only.
    V1,
}

impl ConfigApi {
    pub(super) fn group_version(self) -> &'static str {
        match self {
            Self::V1beta4 => v1beta4::GROUP_VERSION,
            Self::V1beta3 => v1beta3::GROUP_VERSION,
            Self::V1 => v1::GROUP_VERSION,
        }
    }

    /// The kinds the version has (kubeadm's scheme registers no others).
    pub(super) fn kinds(self) -> &'static [&'static str] {
        const ALL: &[&str] = &[
            "InitConfiguration",
            "ClusterConfiguration",
            "JoinConfiguration",
            "ResetConfiguration",
            "UpgradeConfiguration",
        ];
        match self {
            Self::V1beta4 | Self::V1 => ALL,
            Self::V1beta3 => &ALL[..3],
        }
    }
}

/// kubeadm's `oldKnownAPIVersions` that every release in the window shares: each removed
/// version and the kubeadm release that last read it.
const REMOVED_API_VERSIONS: [(&str, &str); 5] = [
    ("kubeadm.k8s.io/v1alpha1", "v1.11"),
    ("kubeadm.k8s.io/v1alpha2", "v1.12"),
    ("kubeadm.k8s.io/v1alpha3", "v1.14"),
    ("kubeadm.k8s.io/v1beta1", "v1.15"),
    ("kubeadm.k8s.io/v1beta2", "v1.22"),
];

/// The last minor whose kubeadm reads v1beta3 (v1.37 removed it).
const LAST_V1BETA3_MINOR: u64 = 36;
/// The first minor whose kubeadm reads the experimental v1.
const FIRST_V1_MINOR: u64 = 37;

/// A kubeadm document's `apiVersion` judged for a release and a command: the API to decode it
/// with, and kubeadm's deprecation warning when it prints one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Accepted {
    pub api: ConfigApi,
    pub warning: Option<String>,
}

/// Judges one document's `apiVersion` (in the kubeadm group) as the kubeadm of `release` does
/// for `reader`; the error is the message for the user. `release` is the target release, or why
/// the file names none kubeforge deploys (only versions that depend on it need it).
pub(super) fn accept(
    group_version: &str,
    kind: &str,
    release: Result<Release, &str>,
    reader: Reader,
) -> Result<Accepted, String> {
    if let Some((_, kubeadm)) = REMOVED_API_VERSIONS
        .iter()
        .find(|(removed, _)| *removed == group_version)
    {
        return Err(old_api_spec(group_version, kind, kubeadm));
    }
    if group_version == v1beta4::GROUP_VERSION {
        return Ok(Accepted {
            api: ConfigApi::V1beta4,
            warning: None,
        });
    }
    let known = [ConfigApi::V1beta3, ConfigApi::V1]
        .into_iter()
        .find(|api| api.group_version() == group_version);
    let release = match (known, release) {
        (None, Ok(release)) => return Err(unknown_api_version(group_version, kind, release)),
        (None, Err(_)) => {
            return Err(format!(
                "unknown kubeadm config API version {group_version:?} (kind {kind:?}); \
                 kubeforge reads {} and, for the releases that have them, {} and {}",
                v1beta4::GROUP_VERSION,
                v1beta3::GROUP_VERSION,
                v1::GROUP_VERSION
            ));
        }
        (Some(api), Err(why)) => {
            return Err(format!(
                "whether kubeforge reads {} depends on the Kubernetes version it deploys, and {why}",
                api.group_version()
            ));
        }
        (Some(_), Ok(release)) => release,
    };
    match known {
        Some(ConfigApi::V1beta3) if release.minor > LAST_V1BETA3_MINOR => Err(format!(
            "{} kubeforge reads {} only when it deploys Kubernetes {}: set kubernetesVersion \
             (or --kubernetes-version) to one of those, or write the file as {} with \
             `kubeforge config migrate --kubernetes-version {} --old-config <old-file> \
             --new-config <new-file>`",
            old_api_spec(group_version, kind, "v1.36"),
            v1beta3::GROUP_VERSION,
            minors_reading(ConfigApi::V1beta3),
            v1beta4::GROUP_VERSION,
            newest_reading(ConfigApi::V1beta3).newest_version(),
        )),
        Some(ConfigApi::V1beta3) => Ok(Accepted {
            api: ConfigApi::V1beta3,
            warning: warns_deprecated(release, reader)
                .then(|| deprecated_api_spec(group_version, kind)),
        }),
        Some(ConfigApi::V1) if release.minor >= FIRST_V1_MINOR => match reader {
            Reader::Init => Err(format!(
                "{} `kubeforge init` does not: it reads {} (where an extra argument replaces \
                 kubeadm's, so write the merged value instead of a mergeMethod); `kubeforge \
                 config migrate --allow-experimental-api --old-config <file>` writes this file \
                 as {}",
                experimental_api_spec(group_version, kind),
                v1beta4::GROUP_VERSION,
                v1beta4::GROUP_VERSION
            )),
            Reader::Validate {
                allow_experimental_api: false,
                ..
            }
            | Reader::Migrate {
                allow_experimental_api: false,
            } => Err(experimental_api_spec(group_version, kind)),
            Reader::Validate { .. } | Reader::Migrate { .. } => Ok(Accepted {
                api: ConfigApi::V1,
                warning: None,
            }),
        },
        _ => Err(unknown_api_version(group_version, kind, release)),
    }
}

/// Whether kubeadm prints its deprecation warning for a v1beta3 document: `init` always;
/// `config validate` from v1.36 on, unless `--allow-deprecated-api` (v1.35's has no such
/// flag and never warns); `config migrate` never.
fn warns_deprecated(release: Release, reader: Reader) -> bool {
    match reader {
        Reader::Init => true,
        Reader::Validate {
            allow_deprecated_api,
            ..
        } => release.minor >= 36 && !allow_deprecated_api,
        Reader::Migrate { .. } => false,
    }
}

/// kubeadm's error for a removed API version, naming the kubeadm release that last read it.
fn old_api_spec(group_version: &str, kind: &str, kubeadm: &str) -> String {
    format!(
        "your configuration file uses an old API spec: {group_version:?} (kind: {kind:?}). \
         Please use kubeadm {kubeadm} instead and run 'kubeadm config migrate --old-config \
         old-config-file --new-config new-config-file', which will write the new, similar spec \
         using a newer API version."
    )
}

/// kubeadm's warning for a deprecated API version.
fn deprecated_api_spec(group_version: &str, kind: &str) -> String {
    format!(
        "your configuration file uses a deprecated API spec: {group_version:?} (kind: {kind:?}). \
         Please use 'kubeadm config migrate --old-config old-config-file --new-config \
         new-config-file', which will write the new, similar spec using a newer API version."
    )
}

/// kubeadm's error for an experimental API version read without `--allow-experimental-api`.
fn experimental_api_spec(group_version: &str, kind: &str) -> String {
    format!(
        "experimental API spec: {group_version:?} (kind: {kind:?}) is not allowed. You can use \
         the --allow-experimental-api flag if the command supports it."
    )
}

fn unknown_api_version(group_version: &str, kind: &str, release: Release) -> String {
    let mut message = format!(
        "unknown kubeadm config API version {group_version:?} (kind {kind:?}); {}",
        accepted_versions(release)
    );
    for api in [ConfigApi::V1beta3, ConfigApi::V1] {
        if api.group_version() == group_version {
            message.push_str(&format!(
                " ({group_version} is read for Kubernetes {})",
                minors_reading(api)
            ));
        }
    }
    message
}

/// The API versions kubeforge reads for a release, as a sentence.
pub(super) fn accepted_versions(release: Release) -> String {
    let minor = release.minor;
    if minor > LAST_V1BETA3_MINOR {
        format!(
            "kubeforge reads {} for Kubernetes v1.{minor} (and {}, experimental, in `config \
             validate` and `config migrate` with --allow-experimental-api)",
            v1beta4::GROUP_VERSION,
            v1::GROUP_VERSION
        )
    } else {
        format!(
            "kubeforge reads {} and {} (deprecated) for Kubernetes v1.{minor}",
            v1beta4::GROUP_VERSION,
            v1beta3::GROUP_VERSION
        )
    }
}

fn reads(api: ConfigApi, release: Release) -> bool {
    match api {
        ConfigApi::V1beta4 => true,
        ConfigApi::V1beta3 => release.minor <= LAST_V1BETA3_MINOR,
        ConfigApi::V1 => release.minor >= FIRST_V1_MINOR,
    }
}

/// `v1.35 and v1.36`: the releases in the window whose kubeadm reads `api`.
fn minors_reading(api: ConfigApi) -> String {
    let minors: Vec<String> = RELEASES
        .iter()
        .filter(|release| reads(api, **release))
        .map(|release| format!("v1.{}", release.minor))
        .collect();
    match minors.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

fn newest_reading(api: ConfigApi) -> Release {
    RELEASES
        .into_iter()
        .rev()
        .find(|release| reads(api, *release))
        .expect("every API version is read by a release of the window")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(minor: u64) -> Release {
        Release::of_minor(minor).unwrap()
    }

    const VALIDATE: Reader = Reader::Validate {
        allow_deprecated_api: false,
        allow_experimental_api: false,
    };

    #[test]
    fn v1beta4_is_read_everywhere_and_v1beta3_until_v1_36() {
        for minor in [35, 36, 37] {
            let accepted = accept(
                "kubeadm.k8s.io/v1beta4",
                "InitConfiguration",
                Ok(release(minor)),
                Reader::Init,
            );
            assert_eq!(accepted.unwrap().api, ConfigApi::V1beta4);
        }
        let accepted = accept(
            "kubeadm.k8s.io/v1beta3",
            "ClusterConfiguration",
            Ok(release(36)),
            Reader::Init,
        )
        .unwrap();
        assert_eq!(accepted.api, ConfigApi::V1beta3);
        assert_eq!(
            accepted.warning.as_deref(),
            Some(
                "your configuration file uses a deprecated API spec: \"kubeadm.k8s.io/v1beta3\" \
                 (kind: \"ClusterConfiguration\"). Please use 'kubeadm config migrate \
                 --old-config old-config-file --new-config new-config-file', which will write \
                 the new, similar spec using a newer API version."
            )
        );
        let message = accept(
            "kubeadm.k8s.io/v1beta3",
            "InitConfiguration",
            Ok(release(37)),
            Reader::Init,
        )
        .unwrap_err();
        assert!(
            message.starts_with(
                "your configuration file uses an old API spec: \"kubeadm.k8s.io/v1beta3\" (kind: \
                 \"InitConfiguration\"). Please use kubeadm v1.36 instead and run 'kubeadm \
                 config migrate --old-config old-config-file --new-config new-config-file', \
                 which will write the new, similar spec using a newer API version. "
            ),
            "{message}"
        );
        assert!(
            message.contains("Kubernetes v1.35 and v1.36")
                && message.contains("--kubernetes-version v1.36.3"),
            "{message}"
        );
    }

    #[test]
    fn the_deprecation_warning_follows_each_kubeadms_commands() {
        let warns = |minor, reader| {
            accept(
                "kubeadm.k8s.io/v1beta3",
                "InitConfiguration",
                Ok(release(minor)),
                reader,
            )
            .unwrap()
            .warning
            .is_some()
        };
        assert!(warns(35, Reader::Init) && warns(36, Reader::Init));
        assert!(!warns(35, VALIDATE), "kubeadm v1.35's validate never warns");
        assert!(warns(36, VALIDATE));
        let allowed = Reader::Validate {
            allow_deprecated_api: true,
            allow_experimental_api: false,
        };
        assert!(!warns(36, allowed));
        let migrate = Reader::Migrate {
            allow_experimental_api: false,
        };
        assert!(!warns(35, migrate) && !warns(36, migrate));
    }

    #[test]
    fn v1_is_experimental_in_v1_37_and_unknown_before() {
        let experimental = "experimental API spec: \"kubeadm.k8s.io/v1\" (kind: \
                            \"InitConfiguration\") is not allowed. You can use the \
                            --allow-experimental-api flag if the command supports it.";
        let judge = |minor, reader| {
            accept(
                "kubeadm.k8s.io/v1",
                "InitConfiguration",
                Ok(release(minor)),
                reader,
            )
        };
        assert_eq!(judge(37, VALIDATE).unwrap_err(), experimental);
        let message = judge(37, Reader::Init).unwrap_err();
        assert!(
            message.starts_with(experimental) && message.contains("config migrate"),
            "{message}"
        );
        let allowed = Reader::Migrate {
            allow_experimental_api: true,
        };
        assert_eq!(judge(37, allowed).unwrap().api, ConfigApi::V1);
        assert_eq!(
            judge(36, allowed).unwrap_err(),
            "unknown kubeadm config API version \"kubeadm.k8s.io/v1\" (kind \
             \"InitConfiguration\"); kubeforge reads kubeadm.k8s.io/v1beta4 and \
             kubeadm.k8s.io/v1beta3 (deprecated) for Kubernetes v1.36 (kubeadm.k8s.io/v1 is \
             read for Kubernetes v1.37)"
        );
    }

    #[test]
    fn removed_and_unknown_versions() {
        assert_eq!(
            accept(
                "kubeadm.k8s.io/v1beta2",
                "JoinConfiguration",
                Ok(release(35)),
                Reader::Init
            )
            .unwrap_err(),
            "your configuration file uses an old API spec: \"kubeadm.k8s.io/v1beta2\" (kind: \
             \"JoinConfiguration\"). Please use kubeadm v1.22 instead and run 'kubeadm config \
             migrate --old-config old-config-file --new-config new-config-file', which will \
             write the new, similar spec using a newer API version."
        );
        let message = accept(
            "kubeadm.k8s.io/v1beta9",
            "InitConfiguration",
            Ok(release(37)),
            Reader::Init,
        )
        .unwrap_err();
        assert!(
            message.contains("kubeforge reads kubeadm.k8s.io/v1beta4 for Kubernetes v1.37"),
            "{message}"
        );
        let message = accept(
            "kubeadm.k8s.io/v1beta3",
            "InitConfiguration",
            Err("kubernetesVersion \"v1.30.0\" is outside the window"),
            Reader::Init,
        )
        .unwrap_err();
        assert!(message.contains("outside the window"), "{message}");
    }
}
