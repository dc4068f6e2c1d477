//! Issuing, reading and verifying certificates.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use crate::runtime::bindings::kubeforge::phase::pki::{
    CertificateInfo, CertificateSpec, ExtKeyUsage,
};

/// kubeadm backdates NotBefore so that nodes with slightly skewed clocks accept new certificates.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// rcgen parameters for `spec`, valid from `started` − 5 minutes.
pub fn params(
    spec: &CertificateSpec,
    is_ca: bool,
    started: SystemTime,
) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    // rcgen keeps one value per attribute type: a second organization would replace the first,
    // and a certificate would name fewer groups than asked. kubeadm's certificates name one.
    if spec.organizations.len() > 1 {
        bail!(
            "a certificate can name one organization, not {} ({:?})",
            spec.organizations.len(),
            spec.organizations
        );
    }
    for organization in &spec.organizations {
        name.push(DnType::OrganizationName, dn_value(organization));
    }
    name.push(DnType::CommonName, dn_value(&spec.common_name));
    params.distinguished_name = name;
    params.not_before = OffsetDateTime::from(started - BACKDATE);
    params.not_after = not_after(started, spec.validity_seconds)?;
    params.serial_number = Some(random_serial());
    for dns in &spec.dns_names {
        let name = dns
            .as_str()
            .try_into()
            .map_err(|_| anyhow!("{dns:?} is not a valid DNS name for a certificate"))?;
        params.subject_alt_names.push(SanType::DnsName(name));
    }
    for ip in &spec.ip_addresses {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| anyhow!("{ip:?} is not a valid IP address for a certificate"))?;
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    params.extended_key_usages = spec
        .ext_key_usages
        .iter()
        .map(|usage| match usage {
            ExtKeyUsage::ServerAuth => ExtendedKeyUsagePurpose::ServerAuth,
            ExtKeyUsage::ClientAuth => ExtendedKeyUsagePurpose::ClientAuth,
        })
        .collect();
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    if is_ca {
        params.key_usages.push(KeyUsagePurpose::KeyCertSign);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    } else {
        params.use_authority_key_identifier_extension = true;
        // kubeadm's (Go's) `BasicConstraintsValid: true, IsCA: false`: a critical
        // basicConstraints of `CA:FALSE` (an empty SEQUENCE), without the subject key id that
        // rcgen's `IsCa::ExplicitNoCa` would add (Go writes one for CAs only).
        let mut constraints = CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
        constraints.set_criticality(true);
        params.custom_extensions.push(constraints);
    }
    Ok(params)
}

/// The end of a validity of `seconds` from `started`. A phase may ask for any number of seconds;
/// X.509 dates end with the year 9999.
fn not_after(started: SystemTime, seconds: u64) -> Result<OffsetDateTime> {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| {
            OffsetDateTime::from(started).checked_add(time::Duration::seconds(seconds))
        })
        .filter(|end| end.year() <= 9999)
        .ok_or_else(|| {
            anyhow!(
                "a validity of {seconds} seconds ends after the year 9999, the last a certificate can carry"
            )
        })
}

/// A name attribute encoded as Go's encoding/asn1 encodes it: PrintableString when every
/// character is in its set, else UTF8String. Except with a `?`: PrintableString has it, and
/// rcgen lets it in, but its DER writer (yasna) panics on one; no kubeadm name has one.
fn dn_value(text: &str) -> DnValue {
    match text.try_into() {
        Ok(printable) if !text.contains('?') => DnValue::PrintableString(printable),
        _ => DnValue::Utf8String(text.to_string()),
    }
}

/// The subject key id Go (1.25 and later, so kubeadm v1.35) gives a CA: the first 160 bits of
/// the SHA-256 of the public key (the subjectPublicKey bit string).
fn subject_key_id(key: &KeyPair) -> Vec<u8> {
    Sha256::digest(key.public_key_raw())[..20].to_vec()
}

/// A serial in [1, 2^63), as kubeadm picks them.
fn random_serial() -> SerialNumber {
    let serial = rand::random_range(1..i64::MAX as u64);
    SerialNumber::from_slice(&serial.to_be_bytes())
}

/// Sign `key`'s certificate described by `spec` with the CA `ca_pem`/`ca_key`; returns PEM.
pub fn sign(
    spec: &CertificateSpec,
    key: &KeyPair,
    ca_pem: &str,
    ca_key: &KeyPair,
    started: SystemTime,
) -> Result<String> {
    let issuer = Issuer::from_ca_cert_pem(ca_pem, ca_key).context("reading the CA certificate")?;
    let cert = params(spec, false, started)?
        .signed_by(key, &issuer)
        .context("signing the certificate")?;
    Ok(cert.pem())
}

/// A self-signed CA certificate; returns PEM.
pub fn self_sign_ca(spec: &CertificateSpec, key: &KeyPair, started: SystemTime) -> Result<String> {
    let mut params = params(spec, true, started)?;
    params.key_identifier_method = KeyIdMethod::PreSpecified(subject_key_id(key));
    let cert = params
        .self_signed(key)
        .context("self-signing the CA certificate")?;
    Ok(cert.pem())
}

/// The DER of every certificate in a PEM document, in order.
pub fn certificates_der(pem: &str) -> Result<Vec<Vec<u8>>> {
    let ders: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(|block| block.ok())
        .filter(|block| block.label == "CERTIFICATE")
        .map(|block| block.contents)
        .collect();
    if ders.is_empty() {
        bail!("no PEM certificate found");
    }
    Ok(ders)
}

fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    X509Certificate::from_der(der)
        .map(|(_, cert)| cert)
        .map_err(|e| anyhow!("parsing certificate: {e}"))
}

/// What the first certificate of `pem` says.
pub fn inspect(pem: &str) -> Result<CertificateInfo> {
    let ders = certificates_der(pem)?;
    let cert = parse(&ders[0])?;
    let first_cn = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let organizations = cert
        .subject()
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(String::from))
        .collect();
    let (mut dns_names, mut ip_addresses) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(dns) => dns_names.push(dns.to_string()),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_from_bytes(bytes) {
                        ip_addresses.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let mut ext_key_usages = Vec::new();
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if eku.value.server_auth {
            ext_key_usages.push(ExtKeyUsage::ServerAuth);
        }
        if eku.value.client_auth {
            ext_key_usages.push(ExtKeyUsage::ClientAuth);
        }
    }
    Ok(CertificateInfo {
        common_name: first_cn(cert.subject()),
        organizations,
        issuer_common_name: first_cn(cert.issuer()),
        dns_names,
        ip_addresses,
        ext_key_usages,
        is_ca: cert.is_ca(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn ip_from_bytes(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        16 => Some(IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?)),
        _ => None,
    }
}

/// Check that the chain in `pem` (leaf first) leads to the CA `ca_pem` and is currently valid.
pub fn verify(pem: &str, ca_pem: &str) -> Result<()> {
    let ca_der = certificates_der(ca_pem)?.remove(0);
    let mut chain = certificates_der(pem)?;
    chain.push(ca_der);
    for pair in chain.windows(2) {
        let (child, parent) = (parse(&pair[0])?, parse(&pair[1])?);
        if child.issuer().as_raw() != parent.subject().as_raw() {
            bail!(
                "it was issued by {:?}, not by {:?}",
                child.issuer().to_string(),
                parent.subject().to_string()
            );
        }
        child
            .verify_signature(Some(parent.public_key()))
            .map_err(|_| {
                anyhow!(
                    "its signature does not verify with the key of {:?}",
                    parent.subject().to_string()
                )
            })?;
        if !child.validity().is_valid() {
            bail!(
                "it is not valid now (valid from {} to {})",
                child.validity().not_before,
                child.validity().not_after
            );
        }
    }
    Ok(())
}

/// Whether `key` is the private key for the first certificate in `pem`.
pub fn key_matches(pem: &str, key: &KeyPair) -> Result<bool> {
    let der = certificates_der(pem)?.remove(0);
    let cert = parse(&der)?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

/// `sha256:<hex>` of the DER SubjectPublicKeyInfo, as kubeadm's CA cert hash.
pub fn public_key_pin(pem: &str) -> Result<String> {
    let der = certificates_der(pem)?.remove(0);
    let cert = parse(&der)?;
    Ok(format!(
        "sha256:{}",
        hex::encode(Sha256::digest(cert.public_key().raw))
    ))
}

/// One line for plans: subject, issuer, SANs, not-after.
pub fn summary(pem: &str) -> Result<String> {
    let info = inspect(pem)?;
    let sans: Vec<String> = info
        .dns_names
        .iter()
        .map(|d| format!("DNS:{d}"))
        .chain(info.ip_addresses.iter().map(|ip| format!("IP:{ip}")))
        .collect();
    let not_after = OffsetDateTime::from_unix_timestamp(info.not_after)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| info.not_after.to_string());
    let organizations = if info.organizations.is_empty() {
        String::new()
    } else {
        format!(", O={}", info.organizations.join("+"))
    };
    Ok(format!(
        "{}certificate CN={}{organizations}, issuer CN={}, SANs [{}], not after {not_after}",
        if info.is_ca { "CA " } else { "" },
        info.common_name,
        info.issuer_common_name,
        sans.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::ParsedExtension;

    fn spec(common_name: &str, organizations: &[&str]) -> CertificateSpec {
        CertificateSpec {
            common_name: common_name.into(),
            organizations: organizations.iter().map(|o| o.to_string()).collect(),
            dns_names: vec!["kubernetes".into()],
            ip_addresses: vec!["10.96.0.1".into()],
            ext_key_usages: vec![ExtKeyUsage::ServerAuth],
            validity_seconds: 3600,
        }
    }

    /// (OID, critical, parsed) of each extension.
    fn extensions(der: &[u8]) -> Vec<(String, bool, String)> {
        let cert = parse(der).unwrap();
        cert.extensions()
            .iter()
            .map(|e| {
                let parsed = match e.parsed_extension() {
                    ParsedExtension::BasicConstraints(bc) => format!("ca={}", bc.ca),
                    ParsedExtension::SubjectKeyIdentifier(id) => hex::encode(id.0),
                    ParsedExtension::AuthorityKeyIdentifier(aki) => {
                        hex::encode(aki.key_identifier.as_ref().unwrap().0)
                    }
                    _ => String::new(),
                };
                (e.oid.to_id_string(), e.critical, parsed)
            })
            .collect()
    }

    #[test]
    fn certificates_carry_the_extensions_and_name_encoding_kubeadm_writes() {
        let started = SystemTime::now();
        let ca_key = KeyPair::generate().unwrap();
        let ca_pem = self_sign_ca(&spec("kubernetes", &[]), &ca_key, started).unwrap();
        let ca_der = certificates_der(&ca_pem).unwrap().remove(0);
        let ca_ski = hex::encode(&Sha256::digest(ca_key.public_key_raw())[..20]);
        let ca_extensions = extensions(&ca_der);
        assert!(
            ca_extensions.contains(&("2.5.29.14".into(), false, ca_ski.clone())),
            "a CA's subject key id is SHA-256/160 of its key, as Go's: {ca_extensions:?}"
        );
        assert!(ca_extensions.contains(&("2.5.29.19".into(), true, "ca=true".into())));

        let key = KeyPair::generate().unwrap();
        let leaf_pem = sign(
            &spec("kube-apiserver-kubelet-client", &["kubeadm:cluster-admins"]),
            &key,
            &ca_pem,
            &ca_key,
            started,
        )
        .unwrap();
        let leaf_der = certificates_der(&leaf_pem).unwrap().remove(0);
        let leaf_extensions = extensions(&leaf_der);
        assert!(
            leaf_extensions.contains(&("2.5.29.19".into(), true, "ca=false".into())),
            "a signed certificate says CA:FALSE, critical, as kubeadm's: {leaf_extensions:?}"
        );
        assert!(
            !leaf_extensions.iter().any(|(oid, ..)| oid == "2.5.29.14"),
            "no subject key id on a signed certificate (Go writes one for CAs only): {leaf_extensions:?}"
        );
        assert!(leaf_extensions.contains(&("2.5.29.35".into(), false, ca_ski)));
        verify(&leaf_pem, &ca_pem).unwrap();

        let leaf = parse(&leaf_der).unwrap();
        for name in [leaf.subject(), leaf.issuer()] {
            for attribute in name.iter_attributes() {
                assert_eq!(
                    attribute.attr_value().tag().0,
                    19,
                    "{} is a PrintableString, as Go encodes it",
                    attribute.as_str().unwrap()
                );
            }
        }
        assert_eq!(
            dn_value("caf\u{e9}"),
            DnValue::Utf8String("caf\u{e9}".into()),
            "outside PrintableString's set: UTF8String"
        );
    }
}
