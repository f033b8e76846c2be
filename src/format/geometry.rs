//! Where blocks live and how long the plaintext is, from sizes alone.

use crate::crypto::{BLOCK_OVERHEAD, NONCE_LEN};

use super::FormatError;

/// The block layout of one file: pure arithmetic, no I/O.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Offset of block 0.
    pub data_offset: u64,
    /// Plaintext bytes per full block.
    pub block_size: u64,
}

impl Geometry {
    /// Bytes a full block takes on disk.
    pub fn stride(&self) -> u64 {
        self.block_size + BLOCK_OVERHEAD as u64
    }

    /// Where block `i` starts.
    pub fn block_offset(&self, i: u64) -> u64 {
        self.data_offset + i * self.stride()
    }

    /// Number of blocks holding `len` plaintext bytes.
    pub fn blocks_for(&self, len: u64) -> u64 {
        len.div_ceil(self.block_size)
    }

    /// Plaintext bytes in block `i` of a file of `len` bytes.
    pub fn block_len(&self, i: u64, len: u64) -> usize {
        (len.saturating_sub(i * self.block_size)).min(self.block_size) as usize
    }

    /// The on-disk size of a file holding `len` plaintext bytes.
    pub fn ciphertext_size(&self, len: u64) -> u64 {
        self.data_offset + len + self.blocks_for(len) * BLOCK_OVERHEAD as u64
    }

    /// The plaintext length implied by an on-disk size, without any key:
    /// this is how directory listings show sizes cheaply.
    pub fn plaintext_len(&self, size: u64) -> Result<u64, FormatError> {
        if size < self.data_offset {
            return Err(FormatError::HeaderTruncated);
        }
        let body = size - self.data_offset;
        let full = body / self.stride();
        let rem = body % self.stride();
        if rem != 0 && rem <= BLOCK_OVERHEAD as u64 {
            return Err(FormatError::Truncated {
                expected: size - rem + BLOCK_OVERHEAD as u64 + 1,
                actual: size,
            });
        }
        Ok(full * self.block_size + rem.saturating_sub(BLOCK_OVERHEAD as u64))
    }

    /// Offset of block `i`'s tag.
    pub fn tag_offset(&self, i: u64, len: u64) -> u64 {
        self.block_offset(i) + NONCE_LEN as u64 + self.block_len(i, len) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_trip() {
        let g = Geometry {
            data_offset: 512,
            block_size: 4096,
        };
        for len in [0u64, 1, 4095, 4096, 4097, 8192, 1 << 20, 12345] {
            assert_eq!(g.plaintext_len(g.ciphertext_size(len)).unwrap(), len, "len {len}");
        }
        assert!(g.plaintext_len(511).is_err());
        assert!(g.plaintext_len(512 + 10).is_err());
        assert_eq!(g.block_len(1, 5000), 904);
        assert_eq!(g.block_len(2, 5000), 0);
    }
}
