//! Private keys held by the host. A guest sees only a handle; generation runs on background
//! threads so a phase that asks for several keys gets them in parallel.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow, bail};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm,
};
use rcgen::{KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_RSA_SHA256, RsaKeySize};

use crate::runtime::bindings::kubeforge::phase::pki::KeyAlgorithm;

/// Key generations running on background threads, in the whole process.
static BACKGROUND: AtomicUsize = AtomicUsize::new(0);
/// More than kubeadm's PKI needs at once (a dozen keys), few enough to bound a hostile phase.
const MAX_BACKGROUND: usize = 16;

/// A key that is being generated or is ready.
pub struct KeyHandle {
    state: Mutex<KeyState>,
}

enum KeyState {
    Generating(JoinHandle<Result<KeyPair, String>>),
    Ready(Arc<KeyPair>),
    Failed(String),
}

impl KeyHandle {
    /// Start generating a key on a background thread. At most [`MAX_BACKGROUND`] run at once in
    /// the process; beyond that the key is generated on the calling thread, so a phase asking
    /// for keys without end is held to its deadline instead of spawning threads without bound.
    pub fn generate(algorithm: KeyAlgorithm) -> Self {
        let generate_here = || {
            Mutex::new(match generate_key(algorithm) {
                Ok(key) => KeyState::Ready(Arc::new(key)),
                Err(e) => KeyState::Failed(format!("{e:#}")),
            })
        };
        if BACKGROUND.fetch_add(1, Ordering::SeqCst) >= MAX_BACKGROUND {
            BACKGROUND.fetch_sub(1, Ordering::SeqCst);
            return Self {
                state: generate_here(),
            };
        }
        let worker = std::thread::Builder::new().spawn(move || {
            let key = generate_key(algorithm).map_err(|e| format!("{e:#}"));
            BACKGROUND.fetch_sub(1, Ordering::SeqCst);
            key
        });
        match worker {
            Ok(worker) => Self {
                state: Mutex::new(KeyState::Generating(worker)),
            },
            Err(_) => {
                BACKGROUND.fetch_sub(1, Ordering::SeqCst);
                Self {
                    state: generate_here(),
                }
            }
        }
    }

    pub fn ready(key: KeyPair) -> Self {
        Self {
            state: Mutex::new(KeyState::Ready(Arc::new(key))),
        }
    }

    /// The key, waiting for its generation to finish.
    pub fn key(&self) -> Result<Arc<KeyPair>> {
        let mut state = self.state.lock().expect("key lock");
        if let KeyState::Generating(_) = &*state {
            let KeyState::Generating(worker) =
                std::mem::replace(&mut *state, KeyState::Failed(String::new()))
            else {
                unreachable!("checked above")
            };
            *state = match worker.join() {
                Ok(Ok(key)) => KeyState::Ready(Arc::new(key)),
                Ok(Err(e)) => KeyState::Failed(e),
                Err(_) => KeyState::Failed("key generation panicked".into()),
            };
        }
        match &*state {
            KeyState::Ready(key) => Ok(key.clone()),
            KeyState::Failed(e) => Err(anyhow!("generating a private key: {e}")),
            KeyState::Generating(_) => unreachable!("joined above"),
        }
    }
}

fn generate_key(algorithm: KeyAlgorithm) -> Result<KeyPair> {
    let key = match algorithm {
        KeyAlgorithm::Rsa2048 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_2048),
        KeyAlgorithm::Rsa3072 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_3072),
        KeyAlgorithm::Rsa4096 => KeyPair::generate_rsa_for(&PKCS_RSA_SHA256, RsaKeySize::_4096),
        KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384),
    };
    key.with_context(|| format!("generating a {} key", algorithm_name(algorithm)))
}

/// kubeadm's name for a key algorithm (`encryptionAlgorithm`).
pub fn algorithm_name(algorithm: KeyAlgorithm) -> &'static str {
    match algorithm {
        KeyAlgorithm::Rsa2048 => "RSA-2048",
        KeyAlgorithm::Rsa3072 => "RSA-3072",
        KeyAlgorithm::Rsa4096 => "RSA-4096",
        KeyAlgorithm::EcdsaP256 => "ECDSA-P256",
        KeyAlgorithm::EcdsaP384 => "ECDSA-P384",
    }
}

/// A short description of a key for plans and logs, e.g. `RSA private key`.
pub fn describe(key: &KeyPair) -> String {
    if key.algorithm() == &PKCS_ECDSA_P256_SHA256 {
        "ECDSA P-256 private key".into()
    } else if key.algorithm() == &PKCS_ECDSA_P384_SHA384 {
        "ECDSA P-384 private key".into()
    } else {
        format!("RSA-{} private key", rsa_modulus_bits(key).unwrap_or(0))
    }
}

/// The key as PEM the way kubeadm writes it: PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`.
pub fn to_pem(key: &KeyPair) -> Result<String> {
    let der = key.serialized_der();
    let (label, der) = if let Some(curve) = ec_curve(key) {
        let pair = EcdsaKeyPair::from_private_key_der(curve, der)
            .map_err(|e| anyhow!("re-reading an EC key: {e}"))?;
        let sec1 = pair
            .private_key()
            .as_der()
            .map_err(|_| anyhow!("encoding an EC key as SEC1"))?;
        ("EC PRIVATE KEY", sec1.as_ref().to_vec())
    } else {
        ("RSA PRIVATE KEY", rsa_pkcs1(der)?.to_vec())
    };
    Ok(pem_encode(label, &der))
}

fn ec_curve(key: &KeyPair) -> Option<&'static EcdsaSigningAlgorithm> {
    if key.algorithm() == &PKCS_ECDSA_P256_SHA256 {
        Some(&ECDSA_P256_SHA256_ASN1_SIGNING)
    } else if key.algorithm() == &PKCS_ECDSA_P384_SHA384 {
        Some(&ECDSA_P384_SHA384_ASN1_SIGNING)
    } else {
        None
    }
}

/// PEM armour with 64-column base64 lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// One DER element: (tag, contents, rest).
fn der_element(input: &[u8]) -> Result<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first().context("truncated DER")?;
    let (&first, rest) = rest.split_first().context("truncated DER length")?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            bail!("unsupported DER length");
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[count..])
    };
    if rest.len() < len {
        bail!("truncated DER contents");
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The PKCS#1 `RSAPrivateKey` of an RSA key held as PKCS#8 (`PrivateKeyInfo { version,
/// algorithm, privateKey OCTET STRING }`, what key generation yields) or already as PKCS#1
/// (`RSAPrivateKey { version, modulus, … }`, what loading kubeadm's files yields).
fn rsa_pkcs1(der: &[u8]) -> Result<&[u8]> {
    let (_, fields, _) = der_element(der)?;
    let (_, _version, rest) = der_element(fields)?;
    let (tag, _, rest) = der_element(rest)?;
    if tag == 0x02 {
        // An INTEGER (the modulus) after the version: PKCS#1 already.
        return Ok(der);
    }
    let (tag, private_key, _) = der_element(rest)?;
    if tag != 0x04 {
        bail!("PKCS#8 private key is not an OCTET STRING");
    }
    Ok(private_key)
}

/// The RSA modulus size, read from the PKCS#1 structure.
fn rsa_modulus_bits(key: &KeyPair) -> Option<usize> {
    let pkcs1 = rsa_pkcs1(key.serialized_der()).ok()?;
    let (_, fields, _) = der_element(pkcs1).ok()?;
    let (_, _version, rest) = der_element(fields).ok()?;
    let (_, modulus, _) = der_element(rest).ok()?;
    let significant = modulus.iter().skip_while(|b| **b == 0).count();
    Some(significant * 8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_kubeadm_pem_forms() {
        for (algorithm, label, description) in [
            (
                KeyAlgorithm::Rsa2048,
                "RSA PRIVATE KEY",
                "RSA-2048 private key",
            ),
            (
                KeyAlgorithm::EcdsaP256,
                "EC PRIVATE KEY",
                "ECDSA P-256 private key",
            ),
            (
                KeyAlgorithm::EcdsaP384,
                "EC PRIVATE KEY",
                "ECDSA P-384 private key",
            ),
        ] {
            let handle = KeyHandle::generate(algorithm);
            let key = handle.key().unwrap();
            let pem = to_pem(&key).unwrap();
            assert!(
                pem.starts_with(&format!("-----BEGIN {label}-----\n")),
                "{pem}"
            );
            let reloaded = KeyPair::from_pem(&pem).unwrap();
            assert_eq!(reloaded.public_key_raw(), key.public_key_raw());
            // A key loaded from kubeadm's PEM forms is written back unchanged.
            assert_eq!(to_pem(&reloaded).unwrap(), pem);
            assert_eq!(describe(&key), description);
        }
    }
}
