//! The GitLab token at rest: XChaCha20-Poly1305 with a random 192-bit nonce per encryption and
//! associated data that binds it to its row and to everything that decides where it is sent
//! ([`bind`]: row id, owner, base URL, CA): a ciphertext moved to another row, or a row whose
//! address was changed by someone who can write the database but has no key, does not decrypt.
//!
//! The key is 32 bytes, from `ONRAMP_SECRET_KEY` (base64) or a key file created on first run with
//! mode 0600 next to the database. Each ciphertext records the id of its key (the first 8 bytes of
//! SHA-256 of the key, hex), so a key rotation interrupted at any point can be finished.

use crate::gitlab::token::GitlabToken;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use std::path::Path;

#[derive(Clone)]
pub struct Cipher {
    key_id: String,
    aead: XChaCha20Poly1305,
}

/// A sealed token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ONRAMP_SECRET_KEY must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("the key file {0}: {1}")]
    KeyFile(String, String),
    #[error("a stored token could not be decrypted: wrong key, or the data was tampered with")]
    Decrypt,
    #[error("a stored token was encrypted with key {0}, which is not loaded")]
    UnknownKey(String),
}

/// Associated data from several fields, unambiguous (each length-prefixed) and versioned:
/// `bind(&[id, owner, base_url, ca])`.
pub fn bind(fields: &[&str]) -> Vec<u8> {
    let mut aad = b"onramp-aad-v2".to_vec();
    for field in fields {
        aad.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad
}

impl Cipher {
    pub fn from_bytes(key: &[u8; 32]) -> Self {
        let digest = Sha256::digest(key);
        let key_id = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        Cipher { key_id, aead: XChaCha20Poly1305::new(key.into()) }
    }

    pub fn generate() -> ([u8; 32], Self) {
        let key: [u8; 32] = XChaCha20Poly1305::generate_key(&mut OsRng).into();
        let cipher = Cipher::from_bytes(&key);
        (key, cipher)
    }

    /// Parses a base64 key (standard or URL-safe alphabet, padding optional).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let text = text.trim();
        let engines = [
            base64::engine::general_purpose::STANDARD,
            base64::engine::general_purpose::URL_SAFE,
            base64::engine::general_purpose::STANDARD_NO_PAD,
            base64::engine::general_purpose::URL_SAFE_NO_PAD,
        ];
        let bytes = engines.iter().find_map(|e| e.decode(text).ok()).ok_or(CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Cipher::from_bytes(&key))
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Seals a token bound to `aad` (see [`bind`]).
    pub fn seal(&self, token: &GitlabToken, aad: &[u8]) -> Sealed {
        self.seal_str(token.expose(), aad)
    }

    /// Seals any secret text (an API token shown once, say).
    pub fn seal_str(&self, secret: &str, aad: &[u8]) -> Sealed {
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext = self
            .aead
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad })
            .expect("XChaCha20-Poly1305 encryption does not fail for short secrets");
        Sealed { key_id: self.key_id.clone(), nonce: nonce.to_vec(), ciphertext }
    }

    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<GitlabToken, CryptoError> {
        let text = self.open_str(sealed, aad)?;
        GitlabToken::parse(secrecy::ExposeSecret::expose_secret(&text)).map_err(|_| CryptoError::Decrypt)
    }

    pub fn open_str(&self, sealed: &Sealed, aad: &[u8]) -> Result<secrecy::SecretString, CryptoError> {
        if sealed.key_id != self.key_id {
            return Err(CryptoError::UnknownKey(sealed.key_id.clone()));
        }
        if sealed.nonce.len() != 24 {
            return Err(CryptoError::Decrypt);
        }
        let nonce = XNonce::from_slice(&sealed.nonce);
        let mut plain: Vec<u8> =
            self.aead.decrypt(nonce, Payload { msg: &sealed.ciphertext, aad }).map_err(|_| CryptoError::Decrypt)?;
        let text = std::str::from_utf8(&plain).ok().map(|s| secrecy::SecretString::from(s.to_owned()));
        zeroize::Zeroize::zeroize(&mut plain);
        text.ok_or(CryptoError::Decrypt)
    }
}

/// The current key, and the previous ones still able to open older ciphertexts.
#[derive(Clone)]
pub struct Keyring {
    pub current: Cipher,
    pub previous: Vec<Cipher>,
}

impl Keyring {
    pub fn new(current: Cipher) -> Self {
        Keyring { current, previous: Vec::new() }
    }

    fn cipher_for(&self, sealed: &Sealed) -> Result<&Cipher, CryptoError> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|c| c.key_id() == sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))
    }

    pub fn open(&self, sealed: &Sealed, aad: &[u8]) -> Result<GitlabToken, CryptoError> {
        self.cipher_for(sealed)?.open(sealed, aad)
    }

    pub fn open_str(&self, sealed: &Sealed, aad: &[u8]) -> Result<secrecy::SecretString, CryptoError> {
        self.cipher_for(sealed)?.open_str(sealed, aad)
    }
}

/// The key: `ONRAMP_SECRET_KEY` if set, else `<dir>/secret.key` (created with mode 0600).
pub fn load_or_create_key(env_value: Option<&str>, dir: &Path) -> Result<Cipher, CryptoError> {
    if let Some(text) = env_value {
        return Cipher::from_base64(text);
    }
    let path = dir.join("secret.key");
    let fail = |e: std::io::Error| CryptoError::KeyFile(path.display().to_string(), e.to_string());
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            refuse_loose_permissions(&path)?;
            Cipher::from_base64(&text)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (key, cipher) = Cipher::generate();
            write_key_file(&path, &key).map_err(fail)?;
            Ok(cipher)
        }
        Err(e) => Err(fail(e)),
    }
}

/// A key file others can read (or write) is refused: the key decrypts every stored token.
fn refuse_loose_permissions(path: &Path) -> Result<(), CryptoError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| CryptoError::KeyFile(path.display().to_string(), e.to_string()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(CryptoError::KeyFile(
                path.display().to_string(),
                format!(
                    "its permissions ({:o}) let other users read it; it must be readable by Onramp's user only: \
                     chmod 600 {}",
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Writes a key file readable by its owner only, atomically (temp file, fsync, rename).
pub fn write_key_file(path: &Path, key: &[u8; 32]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(base64::engine::general_purpose::STANDARD.encode(key).as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().and_then(|d| std::fs::File::open(d).ok()) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_key_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let created = load_or_create_key(None, dir.path()).unwrap();
        let path = dir.path().join("secret.key");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load_or_create_key(None, dir.path()).unwrap().key_id(), created.key_id());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = load_or_create_key(None, dir.path()).err().expect("refused").to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn seal_open_round_trip_bound_to_the_row() {
        let (_, cipher) = Cipher::generate();
        let token = GitlabToken::parse("glpat-secretsecretsecret").unwrap();
        let sealed = cipher.seal(&token, b"row-1");
        assert!(!sealed.ciphertext.windows(6).any(|w| w == b"glpat-"));
        assert_eq!(cipher.open(&sealed, b"row-1").unwrap().expose(), "glpat-secretsecretsecret");
        assert!(matches!(cipher.open(&sealed, b"row-2"), Err(CryptoError::Decrypt)), "AAD binds the row");
        let again = cipher.seal(&token, b"row-1");
        assert_ne!(again.nonce, sealed.nonce, "fresh nonce each time");
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert!(cipher.open(&tampered, b"row-1").is_err());
        let (_, other) = Cipher::generate();
        assert!(matches!(other.open(&sealed, b"row-1"), Err(CryptoError::UnknownKey(_))));
    }

    #[test]
    fn keys_from_env_and_file() {
        assert!(Cipher::from_base64("short").is_err());
        let key = Cipher::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        assert_eq!(key.key_id().len(), 16);
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_key(None, dir.path()).unwrap();
        let second = load_or_create_key(None, dir.path()).unwrap();
        assert_eq!(first.key_id(), second.key_id(), "the file is reused");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("secret.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
