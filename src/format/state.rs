//! The state record: the mutable, sealed part of a protected file.
//!
//! It commits to the plaintext length and to the exact set of blocks (a
//! keyed XOR-of-PRFs over `(index, tag)`, updatable in O(1) per block
//! write), so truncation, appended blocks and replayed older blocks are all
//! caught. Two slots alternate so that a torn slot write leaves the other.

use zeroize::Zeroizing;

use crate::crypto::{KeyedHmac, Sha256Digest, TAG_LEN, open_small, seal_small};

use super::header::SLOT_LEN;
use super::writer::split_slot;
use super::{FormatError, MAX_LEN, MAX_SEALS};

/// Plaintext bytes of a state record.
const PLAIN_LEN: usize = 8 + 8 + 8 + 8 + 32;
/// Sealed bytes of a state record (nonce + plaintext + tag).
pub const SEALED_LEN: usize = 12 + PLAIN_LEN + 16;

/// The decoded state of a file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// Bumped on every commit; the slot with the higher one is current.
    pub generation: u64,
    /// Plaintext bytes.
    pub len: u64,
    /// Seals made under this file's key so far (nonce-reuse bound).
    pub seals: u64,
    /// Bit 0 ([`DURABLE`]): every block this state names was synced to disk
    /// before the state was written, so it holds after any power loss.
    pub flags: u64,
    /// XOR over blocks of HMAC(commit key, index || tag).
    pub commitment: Sha256Digest,
}

/// Flag: this state's blocks were durable before it was written.
pub const DURABLE: u64 = 1;

/// The commitment term of one block.
pub fn term(commit_key: &KeyedHmac, index: u64, tag: &[u8; TAG_LEN]) -> Sha256Digest {
    commit_key.mac(&[&index.to_be_bytes(), tag])
}

/// XORs `t` into `acc`.
pub fn xor_into(acc: &mut Sha256Digest, t: &Sha256Digest) {
    acc.iter_mut().zip(t).for_each(|(a, b)| *a ^= b);
}

fn aad(header_hash: &Sha256Digest, slot: u8) -> Vec<u8> {
    [b"rightsfs v1 state".as_slice(), header_hash, &[slot]].concat()
}

impl State {
    /// The 64 plaintext bytes: what is sealed, and what a writer signs.
    pub fn plaintext(&self) -> Zeroizing<[u8; PLAIN_LEN]> {
        let mut p = Zeroizing::new([0u8; PLAIN_LEN]);
        p[0..8].copy_from_slice(&self.generation.to_be_bytes());
        p[8..16].copy_from_slice(&self.len.to_be_bytes());
        p[16..24].copy_from_slice(&self.seals.to_be_bytes());
        p[24..32].copy_from_slice(&self.flags.to_be_bytes());
        p[32..64].copy_from_slice(&self.commitment);
        p
    }

    /// Seals the record for `slot` ([`SEALED_LEN`] bytes; the slot's
    /// writer record follows it, see `writer::compose_slot`).
    pub fn seal(&self, key: &[u8; 32], header_hash: &Sha256Digest, slot: u8) -> Vec<u8> {
        seal_small(key, &aad(header_hash, slot), self.plaintext().as_slice())
    }

    /// Opens one slot: `Ok(None)` for a never-written (all-zero) slot,
    /// else the state and the slot's writer record (unchecked).
    pub fn open<'a>(
        key: &[u8; 32],
        header_hash: &Sha256Digest,
        slot: u8,
        raw: &'a [u8],
    ) -> Result<Option<(Self, &'a [u8])>, FormatError> {
        if raw.iter().all(|b| *b == 0) {
            return Ok(None);
        }
        let (sealed, record) = split_slot(raw)?;
        let p = open_small(key, &aad(header_hash, slot), sealed).map_err(|_| FormatError::StateTampered)?;
        let u = |i: usize| u64::from_be_bytes(p[i..i + 8].try_into().unwrap());
        // Only a key holder can seal a state, but a view-only reader holds
        // the key: values no writer produces must not reach size arithmetic.
        if p.len() != PLAIN_LEN || u(8) > MAX_LEN || u(0) == u64::MAX || u(16) > MAX_SEALS {
            return Err(FormatError::StateTampered);
        }
        let state = Self {
            generation: u(0),
            len: u(8),
            seals: u(16),
            flags: u(24),
            commitment: p[32..64].try_into().unwrap(),
        };
        Ok(Some((state, record)))
    }

    /// Whether the state survives any power loss (see [`DURABLE`]).
    pub fn durable(&self) -> bool {
        self.flags & DURABLE != 0
    }

    /// Picks the current state from both slots, with its slot and writer
    /// record. Both must authenticate (or be unwritten): an altered slot is
    /// tampering even if the other is fine.
    pub fn pick<'a>(
        key: &[u8; 32],
        header_hash: &Sha256Digest,
        raw: &'a [u8],
    ) -> Result<(Self, u8, &'a [u8]), FormatError> {
        let a = Self::open(key, header_hash, 0, &raw[..SLOT_LEN as usize])?;
        let b = Self::open(key, header_hash, 1, &raw[SLOT_LEN as usize..])?;
        match (a, b) {
            (Some(a), Some(b)) if b.0.generation > a.0.generation => Ok((b.0, 1, b.1)),
            (Some(a), _) => Ok((a.0, 0, a.1)),
            (None, Some(b)) => Ok((b.0, 1, b.1)),
            (None, None) => Err(FormatError::StateTampered),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::writer::compose_slot;

    #[test]
    fn seal_open_pick() {
        let key = [7u8; 32];
        let h = [1u8; 32];
        let s1 = State {
            generation: 1,
            len: 10,
            seals: 1,
            flags: DURABLE,
            commitment: [2; 32],
        };
        let s2 = State {
            generation: 2,
            len: 20,
            seals: 2,
            flags: 0,
            commitment: [3; 32],
        };
        let mut raw = compose_slot(s1.seal(&key, &h, 0), b"");
        raw.extend(compose_slot(s2.seal(&key, &h, 1), b"rec"));
        assert_eq!(State::pick(&key, &h, &raw).unwrap(), (s2.clone(), 1, b"rec".as_slice()));
        let n = SLOT_LEN as usize;
        let mut swapped = raw[n..].to_vec();
        swapped.extend_from_slice(&raw[..n]);
        assert!(
            State::pick(&key, &h, &swapped).is_err(),
            "slots are bound to their position"
        );
        raw[5] ^= 1;
        assert!(matches!(State::pick(&key, &h, &raw), Err(FormatError::StateTampered)));
        assert!(State::pick(&key, &h, &vec![0u8; 2 * n]).is_err());
        // Bytes after the record are tampering too.
        let mut tail = compose_slot(s1.seal(&key, &h, 0), b"");
        tail[n - 1] = 1;
        tail.extend(vec![0u8; n]);
        assert!(matches!(State::pick(&key, &h, &tail), Err(FormatError::StateTampered)));
    }
}
