//! The per-file subkeys derived from a content key.

use zeroize::Zeroizing;

use crate::crypto::{BlockCipher, ContentKey, KeyedHmac, derive_key};
use crate::policy::ContentId;

/// Subkeys of one file, derived with HKDF-SHA256 (salt: the content id), so
/// that blocks, state records, the block commitment and the header MAC
/// never share a key.
pub struct FileKeys {
    /// Seals blocks.
    pub blocks: BlockCipher,
    /// Seals state slots.
    pub state: Zeroizing<[u8; 32]>,
    /// The block commitment PRF, keyed once per open file.
    pub commit: KeyedHmac,
    /// Keys the header MAC.
    pub header: Zeroizing<[u8; 32]>,
    /// Public check value telling a wrong key from a damaged file.
    pub check: [u8; 16],
}

impl FileKeys {
    /// Derives every subkey of `id` from `cek`.
    pub fn derive(cek: &ContentKey, id: &ContentId) -> Self {
        let k = |info: &[u8]| derive_key(cek.as_bytes(), &id.0, info);
        let check = k(b"rightsfs v1 key check");
        Self {
            blocks: BlockCipher::new(&k(b"rightsfs v1 blocks")),
            state: k(b"rightsfs v1 state"),
            commit: KeyedHmac::new(&k(b"rightsfs v1 commitment")[..]),
            header: k(b"rightsfs v1 header mac"),
            check: check[..16].try_into().unwrap(),
        }
    }
}
