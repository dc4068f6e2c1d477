//! kubeadm's `kubeadm-certs` encryption: AES-256-GCM under the run's certificate key, each value
//! stored as nonce ‖ ciphertext ‖ tag (Go's `gcm.Seal(nonce, nonce, data, nil)`).

use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

/// The run's certificate key: from `--certificate-key` / `certificateKey`, or generated on first
/// use. It never reaches a phase that holds ciphertext.
#[derive(Debug, Default)]
pub struct CertificateKey {
    configured: Option<String>,
    key: OnceLock<[u8; 32]>,
}

impl CertificateKey {
    /// `configured` is the hex key of the configuration, if any (validated by the config loader).
    pub fn new(configured: Option<String>) -> Self {
        Self {
            configured: configured.filter(|k| !k.is_empty()),
            key: OnceLock::new(),
        }
    }

    /// The key, generating one the first time if none was configured.
    pub fn get(&self) -> Result<&[u8; 32]> {
        if let Some(key) = self.key.get() {
            return Ok(key);
        }
        let key = match &self.configured {
            Some(hex_key) => {
                let bytes = hex::decode(hex_key).context("certificateKey is not hex")?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .ok()
                    .context("certificateKey must be 32 bytes (64 hex digits)")?
            }
            None => rand::random(),
        };
        Ok(self.key.get_or_init(|| key))
    }

    /// The key as kubeadm prints it, once it exists.
    pub fn hex(&self) -> Option<String> {
        self.key.get().map(hex::encode)
    }
}

/// `data` encrypted under `key` with a fresh random nonce: nonce ‖ ciphertext ‖ tag.
pub fn seal(key: &[u8; 32], data: &[u8]) -> Result<Vec<u8>> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).context("AES-256-GCM key")?);
    let nonce: [u8; NONCE_LEN] = rand::random();
    let mut sealed = nonce.to_vec();
    let mut in_out = data.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::empty(),
        &mut in_out,
    )
    .context("encrypting")?;
    sealed.append(&mut in_out);
    Ok(sealed)
}

/// The inverse of [`seal`], as a joining node decrypts.
pub fn open(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN {
        bail!("the sealed value is shorter than its nonce");
    }
    let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).context("AES-256-GCM key")?);
    let mut in_out = ciphertext.to_vec();
    let plain = key
        .open_in_place(
            Nonce::try_assume_unique_for_key(nonce).context("nonce")?,
            Aad::empty(),
            &mut in_out,
        )
        .ok()
        .context("the value does not decrypt with this key")?;
    Ok(plain.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_with_the_key_only() {
        let key = CertificateKey::new(Some("ab".repeat(32)));
        let sealed = seal(key.get().unwrap(), b"-----BEGIN CERTIFICATE-----").unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 27 + 16);
        assert_eq!(
            open(key.get().unwrap(), &sealed).unwrap(),
            b"-----BEGIN CERTIFICATE-----"
        );
        assert!(open(&[0u8; 32], &sealed).is_err());
        assert_eq!(key.hex().unwrap(), "ab".repeat(32));
    }

    #[test]
    fn a_missing_key_is_generated_once() {
        let key = CertificateKey::new(None);
        assert!(key.hex().is_none());
        let first = *key.get().unwrap();
        assert_eq!(*key.get().unwrap(), first);
        assert_eq!(key.hex().unwrap().len(), 64);
    }
}
