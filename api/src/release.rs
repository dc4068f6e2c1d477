//! The Kubernetes releases kubeforge deploys, each with what that release's kubeadm deploys by
//! default (its `cmd/kubeadm/app/constants`). kubeadm serves one minor per binary; kubeforge
//! serves the whole window from one, so everything that differs by minor is read from here.

/// One Kubernetes minor and the defaults its kubeadm deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    pub minor: u64,
    /// The newest patch release kubeforge knows: what `stable-1.<minor>` resolves to.
    pub newest_patch: u64,
    /// `constants.DefaultEtcdVersion`: the etcd image tag for this minor.
    pub etcd_image_tag: &'static str,
    /// `constants.CoreDNSVersion`.
    pub coredns_version: &'static str,
    /// `constants.PauseVersion`.
    pub pause_version: &'static str,
}

/// The window, oldest first.
pub const RELEASES: [Release; 3] = [
    Release {
        minor: 35,
        newest_patch: 4,
        etcd_image_tag: "3.6.6-0",
        coredns_version: "v1.13.1",
        pause_version: "3.10.1",
    },
    Release {
        minor: 36,
        newest_patch: 3,
        etcd_image_tag: "3.6.8-0",
        coredns_version: "v1.14.2",
        pause_version: "3.10.2",
    },
    Release {
        minor: 37,
        newest_patch: 2,
        etcd_image_tag: "3.7.0-0",
        coredns_version: "v1.14.6",
        pause_version: "3.10.2",
    },
];

/// The release deployed when none is given, and what `stable` and `latest` mean: the newest.
pub const DEFAULT_RELEASE: Release = NEWEST_RELEASE;

/// `DEFAULT_RELEASE` as a version string.
pub const DEFAULT_KUBERNETES_VERSION: &str = "v1.37.2";

/// The newest release of the window.
pub const NEWEST_RELEASE: Release = RELEASES[RELEASES.len() - 1];

impl Release {
    /// The oldest release of the window.
    pub const OLDEST: Release = RELEASES[0];

    /// The release of a Kubernetes minor, if the window holds it.
    pub fn of_minor(minor: u64) -> Option<Release> {
        RELEASES.into_iter().find(|release| release.minor == minor)
    }

    /// The release a Kubernetes version belongs to; outside the window, the nearest end of it
    /// (validation refuses such a version; this keeps rendering total).
    pub fn of_version(version: &str) -> Release {
        match KubernetesVersion::parse(version) {
            Some(version) if version.minor < Self::OLDEST.minor => Self::OLDEST,
            Some(version) => Self::of_minor(version.minor).unwrap_or(NEWEST_RELEASE),
            None => DEFAULT_RELEASE,
        }
    }

    /// The window as a person reads it: `v1.35.0 to v1.37.x`.
    pub fn window() -> String {
        format!(
            "v1.{}.0 to v1.{}.x",
            Self::OLDEST.minor,
            NEWEST_RELEASE.minor
        )
    }

    /// The release of a requested version or label (`stable-1.36`); an error that names the
    /// window when it is outside or not a version.
    pub fn of_request(requested: &str) -> Result<Release, String> {
        resolve_kubernetes_version(requested)
            .as_deref()
            .and_then(KubernetesVersion::parse)
            .filter(|version| version.major == 1)
            .and_then(|version| Self::of_minor(version.minor))
            .ok_or_else(|| {
                format!(
                    "Kubernetes version {requested:?} is outside the window kubeforge deploys \
                     ({}); use a version in it, or a label such as \"stable\" or \"stable-1.36\"",
                    Self::window()
                )
            })
    }

    /// `v1.<minor>.<newest patch>`.
    pub fn newest_version(&self) -> String {
        format!("v1.{}.{}", self.minor, self.newest_patch)
    }
}

/// A parsed `v<major>.<minor>.<patch>[-pre][+build]` Kubernetes version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubernetesVersion {
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
}

impl KubernetesVersion {
    /// Parses a semantic version with an optional leading `v` and optional pre-release/build.
    pub fn parse(text: &str) -> Option<Self> {
        let core = text.strip_prefix('v').unwrap_or(text);
        let core_end = core.find(['-', '+']).unwrap_or(core.len());
        let (core, suffix) = core.split_at(core_end);
        let suffix_ok = suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.' | '_'))
            && suffix.len() != 1;
        let numbers: Vec<u64> = core
            .split('.')
            .map(|part| {
                let canonical = !part.is_empty() && (part == "0" || !part.starts_with('0'));
                part.parse()
                    .ok()
                    .filter(|_| canonical && part.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect::<Option<_>>()?;
        match numbers[..] {
            [major, minor, patch] if suffix_ok => Some(Self {
                major,
                minor,
                patch,
            }),
            _ => None,
        }
    }
}

/// Resolves a version label without any network lookup, or adds the `v` prefix to an explicit
/// version; `None` when the text is neither a known label nor a semantic version. `stable`,
/// `latest`, `stable-1` and `latest-1` mean the default release; `stable-1.<minor>` and
/// `latest-1.<minor>` the newest patch of that minor kubeforge knows.
pub fn resolve_kubernetes_version(requested: &str) -> Option<String> {
    let label = ["stable", "latest"]
        .iter()
        .find_map(|prefix| requested.strip_prefix(prefix));
    if let Some(rest) = label {
        if rest.is_empty() || rest == "-1" {
            return Some(DEFAULT_KUBERNETES_VERSION.into());
        }
        let minor = rest.strip_prefix("-1.")?;
        return minor
            .parse()
            .ok()
            .filter(|_| !minor.starts_with('0') || minor == "0")
            .and_then(Release::of_minor)
            .map(|release| release.newest_version());
    }
    KubernetesVersion::parse(requested)?;
    Some(if requested.starts_with('v') {
        requested.to_owned()
    } else {
        format!("v{requested}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_newest_release() {
        assert_eq!(DEFAULT_RELEASE.newest_version(), DEFAULT_KUBERNETES_VERSION);
        assert!(
            RELEASES
                .windows(2)
                .all(|pair| pair[0].minor + 1 == pair[1].minor)
        );
    }

    #[test]
    fn labels_resolve_offline_to_the_newest_known_patch() {
        for (label, version) in [
            ("stable", Some("v1.37.2")),
            ("latest-1", Some("v1.37.2")),
            ("stable-1.37", Some("v1.37.2")),
            ("stable-1.36", Some("v1.36.3")),
            ("latest-1.35", Some("v1.35.4")),
            ("stable-1.34", None),
            ("stable-1.036", None),
            ("stable-2", None),
            ("1.36.1", Some("v1.36.1")),
            ("v1.35.0-rc.1", Some("v1.35.0-rc.1")),
            ("1.36", None),
        ] {
            assert_eq!(
                resolve_kubernetes_version(label).as_deref(),
                version,
                "{label}"
            );
        }
    }

    #[test]
    fn every_version_belongs_to_a_release() {
        assert_eq!(Release::of_version("v1.36.0").etcd_image_tag, "3.6.8-0");
        assert_eq!(Release::of_version("v1.35.4").coredns_version, "v1.13.1");
        assert_eq!(Release::of_version("v1.30.0"), Release::OLDEST);
        assert_eq!(Release::of_version("v1.40.0"), NEWEST_RELEASE);
    }
}
