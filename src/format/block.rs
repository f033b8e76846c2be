//! One block of a protected file as bytes: the data every block's seal is
//! bound to, and the buffer plaintext passes through. Pure: no file, no
//! thread; the file store (`store`) and any reader of the format over byte
//! slices build on it.

use zeroize::Zeroize;

use super::header::FileHeader;
use crate::crypto::TAG_LEN;

pub(super) type Tag = [u8; TAG_LEN];

/// A heap buffer that holds plaintext at some point, wiped on drop.
/// `Zeroizing<Vec<u8>>` would wipe it one volatile byte at a time (zeroize's
/// `Vec` impl goes element by element), which costs about half as much as
/// decrypting it; the slice impl wipes in bulk behind an optimisation barrier.
/// Public because the mount answers reads with one.
pub struct Wiped(pub(super) Vec<u8>);

impl Wiped {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0u8; len])
    }

    /// Keeps the first `len` bytes; those after stay in the allocation
    /// until they are wiped with it.
    pub fn truncate(&mut self, len: usize) {
        self.0.truncate(len);
    }
}

impl std::ops::Deref for Wiped {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::DerefMut for Wiped {
    fn deref_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

impl Wiped {
    /// Zeroes the whole allocation: the bytes and, after a `truncate`,
    /// the spare capacity (both in bulk).
    fn wipe(&mut self) {
        self.0.as_mut_slice().zeroize();
        self.0.spare_capacity_mut().zeroize();
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// What block `index` of the file with `header` is sealed to: content id,
/// header hash, index and whether it is the last block.
pub(super) fn block_aad(header: &FileHeader, index: u64, last: bool) -> [u8; 57] {
    let mut aad = [0u8; 57];
    aad[..16].copy_from_slice(&header.body.content_id.0);
    aad[16..48].copy_from_slice(&header.hash);
    aad[48..56].copy_from_slice(&index.to_be_bytes());
    aad[56] = last as u8;
    aad
}
#[cfg(test)]
mod tests {
    use super::Wiped;

    #[test]
    fn wipe_zeroes_every_byte() {
        let mut w = Wiped(vec![0xa5; 10_000]);
        w[3] = 1;
        w.wipe();
        assert!(w.iter().all(|b| *b == 0));
        assert_eq!(w.len(), 10_000);
    }
}
