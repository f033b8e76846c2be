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

/// Seals `plaintext` under a key derived from `passphrase`; the output is
/// `salt || nonce || ciphertext || tag`.
pub fn seal_with_passphrase(passphrase: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let salt: [u8; PASSPHRASE_SALT_LEN] = super::hash::random_array();
    let key = derive(passphrase, &salt)?;
    let mut out = salt.to_vec();
    out.extend_from_slice(&seal_small(&key, AAD, plaintext));
    Ok(out)
}

/// Opens a value made by [`seal_with_passphrase`]; a wrong passphrase and
/// a damaged file both fail authentication.
pub fn open_with_passphrase(passphrase: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if sealed.len() < PASSPHRASE_SALT_LEN {
        return Err(CryptoError::Malformed("sealed credential file too short"));
    }
    let (salt, rest) = sealed.split_at(PASSPHRASE_SALT_LEN);
    let key = derive(passphrase, salt)?;
    open_small(&key, AAD, rest).map(Zeroizing::new)
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
}
