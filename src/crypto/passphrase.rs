//! Passphrase-based keys for the headless credential file: Argon2id makes
//! each guess at the passphrase cost memory and time.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

use super::CryptoError;
use super::aead::{open_small, seal_small};

/// Bytes of random salt stored beside a passphrase-sealed value.
pub const PASSPHRASE_SALT_LEN: usize = 16;

const AAD: &[u8] = b"rightsfs credential file v1";

fn derive(passphrase: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
    // 19 MiB, 2 passes, 1 lane: the OWASP minimum for Argon2id.
    let params = Params::new(19 * 1024, 2, 1, Some(32)).map_err(|_| CryptoError::Malformed("argon2 parameters"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase, salt, out.as_mut())
        .map_err(|_| CryptoError::Malformed("argon2 input"))?;
    Ok(out)
}

/// The key derived from one passphrase with one salt, kept by a process
/// that reads and rewrites its credential file many times (a mount reads
/// it for each token it needs): each derivation takes 19 MiB and tens of
/// milliseconds, which a long-running daemon should pay once, not at
/// every read. Holds only keys derived from a single passphrase: whoever
/// keeps one must drop it when the passphrase changes.
#[derive(Default)]
pub struct PassphraseKey(Option<([u8; PASSPHRASE_SALT_LEN], Zeroizing<[u8; 32]>)>);

impl PassphraseKey {
    /// The key for `salt`: the one kept, or a new derivation (not kept).
    fn for_salt(&self, passphrase: &[u8], salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, CryptoError> {
        match &self.0 {
            Some((s, k)) if s[..] == *salt => Ok(k.clone()),
            _ => derive(passphrase, salt),
        }
    }
}

/// Seals `plaintext` under a key derived from `passphrase`; the output is
/// `salt || nonce || ciphertext || tag`.
pub fn seal_with_passphrase(passphrase: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    seal_with_passphrase_key(passphrase, plaintext, &mut PassphraseKey::default())
}

/// [`seal_with_passphrase`] with the salt and key `kept` hold, if any (a
/// fresh nonce each time), else a new salt whose key is then kept.
pub fn seal_with_passphrase_key(
    passphrase: &[u8],
    plaintext: &[u8],
    kept: &mut PassphraseKey,
) -> Result<Vec<u8>, CryptoError> {
    if kept.0.is_none() {
        let salt: [u8; PASSPHRASE_SALT_LEN] = super::hash::random_array();
        kept.0 = Some((salt, derive(passphrase, &salt)?));
    }
    let Some((salt, key)) = &kept.0 else {
        unreachable!("set above")
    };
    let mut out = salt.to_vec();
    out.extend_from_slice(&seal_small(key, AAD, plaintext));
    Ok(out)
}

/// Opens a value made by [`seal_with_passphrase`]; a wrong passphrase and
/// a damaged file both fail authentication.
pub fn open_with_passphrase(passphrase: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    open_with_passphrase_key(passphrase, sealed, &mut PassphraseKey::default())
}

/// [`open_with_passphrase`], deriving only if `kept` holds no key for the
/// value's salt; a key that opened the value is kept.
pub fn open_with_passphrase_key(
    passphrase: &[u8],
    sealed: &[u8],
    kept: &mut PassphraseKey,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < PASSPHRASE_SALT_LEN {
        return Err(CryptoError::Malformed("sealed credential file too short"));
    }
    let (salt, rest) = sealed.split_at(PASSPHRASE_SALT_LEN);
    let key = kept.for_salt(passphrase, salt)?;
    let plain = open_small(&key, AAD, rest).map(Zeroizing::new)?;
    let mut s = [0u8; PASSPHRASE_SALT_LEN];
    s.copy_from_slice(salt);
    kept.0 = Some((s, key));
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let s = seal_with_passphrase(b"correct horse", b"secret").unwrap();
        assert_eq!(
            open_with_passphrase(b"correct horse", &s).unwrap().as_slice(),
            b"secret"
        );
        assert_eq!(
            open_with_passphrase(b"wrong", &s).unwrap_err(),
            CryptoError::Authentication
        );
        assert!(open_with_passphrase(b"x", &s[..4]).is_err());
    }

    #[test]
    fn a_kept_key_serves_its_salt_and_reseals_under_it() {
        let s = seal_with_passphrase(b"correct horse", b"one").unwrap();
        let mut kept = PassphraseKey::default();
        // A wrong passphrase keeps nothing.
        assert!(open_with_passphrase_key(b"wrong", &s, &mut kept).is_err());
        assert!(kept.0.is_none());
        assert_eq!(
            open_with_passphrase_key(b"correct horse", &s, &mut kept)
                .unwrap()
                .as_slice(),
            b"one"
        );
        assert_eq!(kept.0.as_ref().unwrap().0[..], s[..PASSPHRASE_SALT_LEN]);
        // Resealing keeps the salt (so no new derivation) but not the nonce,
        // and what it makes opens without the kept key too.
        let a = seal_with_passphrase_key(b"correct horse", b"two", &mut kept).unwrap();
        let b = seal_with_passphrase_key(b"correct horse", b"two", &mut kept).unwrap();
        assert_eq!(a[..PASSPHRASE_SALT_LEN], s[..PASSPHRASE_SALT_LEN]);
        assert_ne!(a, b);
        assert_eq!(open_with_passphrase(b"correct horse", &a).unwrap().as_slice(), b"two");
        // A value under another salt is derived for, not opened with the kept key.
        let other = seal_with_passphrase(b"other", b"three").unwrap();
        assert!(open_with_passphrase_key(b"correct horse", &other, &mut kept).is_err());
        assert_eq!(kept.0.as_ref().unwrap().0[..], s[..PASSPHRASE_SALT_LEN]);
    }
}
