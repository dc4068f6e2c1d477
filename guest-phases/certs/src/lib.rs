//! The `certs` phase: kubeadm's PKI under the `pki` root — the cluster CA, the front-proxy CA,
//! the etcd CA, the certificates they sign, and the service-account key pair.
//!
//! Which certificates exist and what they say ([`certificate_specs`]) and what to do with what is
//! already on disk ([`leaf_action`]) are pure functions, unit-tested natively; the component
//! module only asks the host what exists and carries the decisions out.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kubeforge_sdk::api::EffectiveConfig;
use kubeforge_sdk::api::net::{self, Host};
use kubeforge_sdk::api::release::Release;
use kubeforge_sdk::certificates;
use kubeforge_sdk::pki::{CertificateSpec, ExtKeyUsage};
use kubeforge_sdk::{FieldError, PhaseError};

#[cfg(target_arch = "wasm32")]
mod component;
#[cfg(test)]
mod tests;

/// The name of a certificate as kubeadm knows it: sub-phase, files and signer.
#[derive(Debug, PartialEq, Eq)]
pub struct Identity {
    /// The sub-phase name (`etcd-server`); for a CA also the authority name the host knows.
    pub name: &'static str,
    /// The file name without extension under the `pki` root (`etcd/server`).
    pub base_name: &'static str,
    /// kubeadm's `LongName`, used in the sub-phase description.
    pub long_name: &'static str,
    /// The CA that signs it; `None` for a self-signed CA.
    pub issuer: Option<&'static str>,
}

impl Identity {
    /// Whether the certificate belongs to the local etcd PKI, which external etcd replaces.
    pub fn is_etcd(&self) -> bool {
        self.name == ETCD_CA || self.issuer == Some(ETCD_CA)
    }
}

const CA: &str = "ca";
const FRONT_PROXY_CA: &str = "front-proxy-ca";
const ETCD_CA: &str = "etcd-ca";

/// Every certificate kubeadm's `certs` phase manages, in its order (each CA before the
/// certificates it signs).
pub const CERTIFICATES: [Identity; 10] = [
    Identity {
        name: CA,
        base_name: "ca",
        long_name: "self-signed Kubernetes CA to provision identities for other Kubernetes components",
        issuer: None,
    },
    Identity {
        name: "apiserver",
        base_name: "apiserver",
        long_name: "certificate for serving the Kubernetes API",
        issuer: Some(CA),
    },
    Identity {
        name: "apiserver-kubelet-client",
        base_name: "apiserver-kubelet-client",
        long_name: "certificate for the API server to connect to kubelet",
        issuer: Some(CA),
    },
    Identity {
        name: FRONT_PROXY_CA,
        base_name: "front-proxy-ca",
        long_name: "self-signed CA to provision identities for front proxy",
        issuer: None,
    },
    Identity {
        name: "front-proxy-client",
        base_name: "front-proxy-client",
        long_name: "certificate for the front proxy client",
        issuer: Some(FRONT_PROXY_CA),
    },
    Identity {
        name: ETCD_CA,
        base_name: "etcd/ca",
        long_name: "self-signed CA to provision identities for etcd",
        issuer: None,
    },
    Identity {
        name: "etcd-server",
        base_name: "etcd/server",
        long_name: "certificate for serving etcd",
        issuer: Some(ETCD_CA),
    },
    Identity {
        name: "etcd-peer",
        base_name: "etcd/peer",
        long_name: "certificate for etcd nodes to communicate with each other",
        issuer: Some(ETCD_CA),
    },
    Identity {
        name: "etcd-healthcheck-client",
        base_name: "etcd/healthcheck-client",
        long_name: "certificate for liveness probes to healthcheck etcd",
        issuer: Some(ETCD_CA),
    },
    Identity {
        name: "apiserver-etcd-client",
        base_name: "apiserver-etcd-client",
        long_name: "certificate the apiserver uses to access etcd",
        issuer: Some(ETCD_CA),
    },
];

/// The service-account signing key pair: not a certificate, so not in [`CERTIFICATES`].
pub const SERVICE_ACCOUNT: &str = "sa";
pub const SERVICE_ACCOUNT_DESCRIPTION: &str =
    "Generate a private key for signing service account tokens along with its public key";

/// kubeadm's `ClusterAdminsGroupAndClusterRoleBinding`.
const CLUSTER_ADMINS_GROUP: &str = "kubeadm:cluster-admins";

/// The identity of a CA by its authority name.
pub fn authority(name: &str) -> Option<&'static Identity> {
    CERTIFICATES
        .iter()
        .find(|identity| identity.name == name && identity.issuer.is_none())
}

/// One certificate to issue, with what it must say.
#[derive(Debug, Clone)]
pub struct CertDef {
    pub identity: &'static Identity,
    pub spec: CertificateSpec,
    /// User-supplied SANs that were dropped, as kubeadm's warnings.
    pub warnings: Vec<String>,
}

/// The certificates `cfg` calls for, in kubeadm's order: all ten, or without the etcd ones when
/// etcd is external.
pub fn certificate_specs(cfg: &EffectiveConfig) -> Result<Vec<CertDef>, PhaseError> {
    let leaf_validity = certificates::certificate_validity_seconds(cfg)?;
    let ca_validity = certificates::ca_certificate_validity_seconds(cfg)?;
    let external_etcd = cfg.cluster.etcd.external.is_some();
    CERTIFICATES
        .iter()
        .filter(|identity| !(external_etcd && identity.is_etcd()))
        .map(|identity| {
            let mut warnings = Vec::new();
            let spec = if identity.issuer.is_none() {
                // kubeadm's self-signed CAs name themselves in their only SAN.
                CertificateSpec {
                    common_name: ca_common_name(identity).into(),
                    organizations: vec![],
                    dns_names: vec![ca_common_name(identity).into()],
                    ip_addresses: vec![],
                    ext_key_usages: vec![],
                    validity_seconds: ca_validity,
                }
            } else {
                leaf_spec(cfg, identity, leaf_validity, &mut warnings)?
            };
            Ok(CertDef {
                identity,
                spec,
                warnings,
            })
        })
        .collect()
}

fn ca_common_name(identity: &Identity) -> &'static str {
    match identity.name {
        CA => "kubernetes",
        other => other,
    }
}

fn leaf_spec(
    cfg: &EffectiveConfig,
    identity: &Identity,
    validity_seconds: u64,
    warnings: &mut Vec<String>,
) -> Result<CertificateSpec, PhaseError> {
    use ExtKeyUsage::{ClientAuth, ServerAuth};
    let client = |common_name: &str, organizations: &[&str]| CertificateSpec {
        common_name: common_name.into(),
        organizations: organizations.iter().map(|o| o.to_string()).collect(),
        dns_names: vec![],
        ip_addresses: vec![],
        ext_key_usages: vec![ClientAuth],
        validity_seconds,
    };
    let serving = |common_name: String, alt_names: AltNames, usages: Vec<ExtKeyUsage>| {
        let (dns_names, ip_addresses) = alt_names.into_sans();
        CertificateSpec {
            common_name,
            organizations: vec![],
            dns_names,
            ip_addresses,
            ext_key_usages: usages,
            validity_seconds,
        }
    };
    let etcd_sans = |sans: fn(&kubeforge_sdk::api::v1beta4::LocalEtcd) -> &Vec<String>| {
        cfg.cluster
            .etcd
            .local
            .as_ref()
            .map(sans)
            .cloned()
            .unwrap_or_default()
    };
    Ok(match identity.name {
        "apiserver" => serving(
            "kube-apiserver".into(),
            apiserver_alt_names(cfg, warnings)?,
            vec![ServerAuth],
        ),
        // Up to v1.35 the API server reached kubelets as a cluster admin; from v1.36 it is no
        // group's member, and the bootstrap-token phase binds its user to
        // system:kubelet-api-admin instead.
        "apiserver-kubelet-client" if Release::of_version(cfg.kubernetes_version()).minor <= 35 => {
            client("kube-apiserver-kubelet-client", &[CLUSTER_ADMINS_GROUP])
        }
        "apiserver-kubelet-client" => client("kube-apiserver-kubelet-client", &[]),
        "front-proxy-client" => client("front-proxy-client", &[]),
        // etcd 3.2+ also wants clientAuth on its serving certificates, hence both usages.
        "etcd-server" => serving(
            node_name(cfg)?.into(),
            etcd_alt_names(
                cfg,
                &etcd_sans(|local| &local.server_cert_sans),
                identity,
                warnings,
            )?,
            vec![ServerAuth, ClientAuth],
        ),
        "etcd-peer" => serving(
            node_name(cfg)?.into(),
            etcd_alt_names(
                cfg,
                &etcd_sans(|local| &local.peer_cert_sans),
                identity,
                warnings,
            )?,
            vec![ServerAuth, ClientAuth],
        ),
        "etcd-healthcheck-client" => client("kube-etcd-healthcheck-client", &[]),
        "apiserver-etcd-client" => client("kube-apiserver-etcd-client", &[]),
        other => unreachable!("{other} is not a leaf certificate of CERTIFICATES"),
    })
}

/// Subject alternative names as kubeadm collects them before `RemoveDuplicateAltNames`.
#[derive(Debug, Default)]
pub struct AltNames {
    dns_names: Vec<String>,
    ips: Vec<IpAddr>,
}

impl AltNames {
    fn push(&mut self, host: Host) {
        match host {
            Host::Ip(ip) => self.ips.push(ip),
            Host::Dns(name) => self.dns_names.push(name),
        }
    }

    /// Adds user-supplied SANs: an IP as an IP SAN, an RFC 1123 subdomain or wildcard as a DNS
    /// SAN; anything else is dropped with kubeadm's warning.
    fn append_user_sans(&mut self, sans: &[String], cert_file: &str, warnings: &mut Vec<String>) {
        for san in sans {
            match Host::classify(san) {
                Some(host) => self.push(host),
                None => warnings.push(format!(
                    "[certificates] WARNING: '{san}' was not added to the '{cert_file}' SAN, \
                     because it is not a valid IP or RFC-1123 compliant DNS entry"
                )),
            }
        }
    }

    /// kubeadm's `RemoveDuplicateAltNames`: DNS names deduplicated and sorted (a Go string
    /// set), IPs deduplicated in their original order.
    fn into_sans(mut self) -> (Vec<String>, Vec<String>) {
        self.dns_names.sort();
        self.dns_names.dedup();
        let mut ips: Vec<String> = Vec::with_capacity(self.ips.len());
        for ip in self.ips.iter().map(IpAddr::to_string) {
            if !ips.contains(&ip) {
                ips.push(ip);
            }
        }
        (self.dns_names, ips)
    }
}

/// kubeadm's `GetAPIServerAltNames`.
pub fn apiserver_alt_names(
    cfg: &EffectiveConfig,
    warnings: &mut Vec<String>,
) -> Result<AltNames, PhaseError> {
    let service_subnet = required(
        cfg.cluster.networking.service_subnet.as_deref(),
        "networking.serviceSubnet",
    )?;
    let service_ip = net::api_server_service_ip(service_subnet)
        .map_err(|e| invalid("networking.serviceSubnet", e.to_string()))?;
    let dns_domain = required(
        cfg.cluster.networking.dns_domain.as_deref(),
        "networking.dnsDomain",
    )?;
    let mut alt_names = AltNames {
        dns_names: vec![
            node_name(cfg)?.into(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            format!("kubernetes.default.svc.{dns_domain}"),
        ],
        ips: vec![service_ip, advertise_address(cfg)?],
    };
    if let Some(host) = net::control_plane_endpoint_host(cfg) {
        alt_names.push(host);
    }
    alt_names.append_user_sans(&cfg.cluster.api_server.cert_sans, "apiserver.crt", warnings);
    Ok(alt_names)
}

/// kubeadm's `getAltNames` for the etcd server and peer certificates.
fn etcd_alt_names(
    cfg: &EffectiveConfig,
    user_sans: &[String],
    identity: &Identity,
    warnings: &mut Vec<String>,
) -> Result<AltNames, PhaseError> {
    let mut alt_names = AltNames {
        dns_names: vec![node_name(cfg)?.into(), "localhost".into()],
        ips: vec![
            advertise_address(cfg)?,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ],
    };
    let cert_file = format!("{}.crt", identity.base_name);
    alt_names.append_user_sans(user_sans, &cert_file, warnings);
    Ok(alt_names)
}

fn node_name(cfg: &EffectiveConfig) -> Result<&str, PhaseError> {
    required(
        cfg.init.node_registration.name.as_deref(),
        "nodeRegistration.name",
    )
}

fn advertise_address(cfg: &EffectiveConfig) -> Result<IpAddr, PhaseError> {
    let field = "localAPIEndpoint.advertiseAddress";
    let address = required(
        cfg.init.local_api_endpoint.advertise_address.as_deref(),
        field,
    )?;
    address.parse().map_err(|_| {
        invalid(
            field,
            format!("{address:?} is not a valid textual representation of an IP address"),
        )
    })
}

fn required<'a>(value: Option<&'a str>, field: &str) -> Result<&'a str, PhaseError> {
    value
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(field, "must be set".into()))
}

fn invalid(field: &str, reason: String) -> PhaseError {
    PhaseError::InvalidConfig(FieldError {
        field: field.into(),
        reason,
    })
}

/// The state of a CA when its certificates are considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaStatus {
    /// Created by this run.
    New,
    /// On disk with its key.
    WithKey,
    /// On disk without its key: kubeadm's external CA mode.
    Keyless,
}

/// What is on disk for a leaf certificate, as the host reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExistingLeaf {
    /// No certificate file.
    Absent,
    /// A certificate its CA did not issue (or a CA that does not exist yet), and why.
    NotSignedByCa(String),
    /// A certificate its CA issued, but its key is missing or belongs to another certificate:
    /// what an interrupted run leaves behind.
    KeyMissingOrMismatched,
    /// A certificate its CA issued, with its key.
    Usable,
}

/// Whether a leaf certificate is reused or issued anew.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafAction {
    Reuse,
    Generate,
}

/// What to do with a leaf certificate: reuse a valid pair, issue a missing one, refuse a
/// certificate from another CA (as kubeadm does), and in external CA mode refuse to issue at all.
pub fn leaf_action(
    identity: &Identity,
    existing: &ExistingLeaf,
    ca: CaStatus,
) -> Result<LeafAction, PhaseError> {
    let ca_base = identity
        .issuer
        .and_then(authority)
        .map_or("?", |ca| ca.base_name);
    match (existing, ca) {
        (ExistingLeaf::Usable, _) => Ok(LeafAction::Reuse),
        (ExistingLeaf::NotSignedByCa(reason), _) => Err(PhaseError::Conflict(format!(
            "certificate {} is not signed by corresponding CA {ca_base}: {reason}",
            identity.base_name
        ))),
        (ExistingLeaf::Absent | ExistingLeaf::KeyMissingOrMismatched, CaStatus::Keyless) => {
            Err(PhaseError::Conflict(format!(
                "external CA mode: {ca_base}.key is not present, so {base}.crt and {base}.key \
                 must be provided, signed by {ca_base}.crt; certificate {base} cannot be generated",
                base = identity.base_name
            )))
        }
        (ExistingLeaf::Absent | ExistingLeaf::KeyMissingOrMismatched, _) => {
            Ok(LeafAction::Generate)
        }
    }
}

/// The sub-phases in kubeadm's order with kubeadm's descriptions.
pub fn sub_phases() -> Vec<(&'static str, String)> {
    CERTIFICATES
        .iter()
        .map(|identity| {
            (
                identity.name,
                format!("Generate the {}", identity.long_name),
            )
        })
        .chain([(SERVICE_ACCOUNT, SERVICE_ACCOUNT_DESCRIPTION.to_string())])
        .collect()
}

/// Checks a requested sub-phase name: none and `all` select everything.
pub fn check_sub_phase(sub_phase: Option<&str>) -> Result<(), PhaseError> {
    let names: Vec<&str> = sub_phases().iter().map(|(name, _)| *name).collect();
    kubeforge_sdk::check_sub_phase("certs", sub_phase, &names)
}

/// The line kubeadm prints after issuing a serving certificate.
pub fn serving_line(def: &CertDef) -> Option<String> {
    def.spec
        .ext_key_usages
        .iter()
        .any(|usage| matches!(usage, ExtKeyUsage::ServerAuth))
        .then(|| {
            format!(
                "[certs] {} serving cert is signed for DNS names [{}] and IPs [{}]",
                def.identity.base_name,
                def.spec.dns_names.join(" "),
                def.spec.ip_addresses.join(" ")
            )
        })
}
