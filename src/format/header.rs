//! The file header: magic, version, the signed publishing licence and the
//! parameters of the block layer, followed by a MAC.

use serde::{Deserialize, Serialize};

use super::Caches;
use super::keys::FileKeys;
use super::{FormatError, Geometry};
use crate::crypto::{ContentKey, Sha256Digest, ct_eq, hmac_sha256, sha256};
use crate::policy::{ContentId, PublishingLicence, PublishingLicenceBody};

/// The first eight bytes of every protected file. The high first byte keeps
/// text tools from taking the file for text, as PNG's magic does.
pub const MAGIC: [u8; 8] = *b"\x89RIGHTS\n";
/// The format version this build writes and reads.
pub const VERSION: u16 = 2;
/// Plaintext bytes per block unless chosen otherwise: one page, one SQLite
/// page, one writeback unit.
pub const DEFAULT_BLOCK_SIZE: u32 = 4096;
/// Largest accepted header body; bounds what a hostile file can make us
/// allocate before anything is authenticated.
pub const MAX_HEADER_BODY: u32 = 64 * 1024;
/// Cipher id of AES-256-GCM with 96-bit random nonces.
pub const CIPHER_AES256GCM: u8 = 1;

/// Magic, version and body length before the header body.
pub(super) const PREFIX_LEN: u64 = 14;
/// The header MAC after the body.
pub(super) const MAC_LEN: u64 = 32;
/// Alignment of the state area and size of a state slot: each slot holds a
/// sealed state and its writer record (certificates and a signature, under
/// 1 KiB), and starts on a 512-byte sector so that the two slots never
/// share one.
pub(super) const STATE_ALIGN: u64 = 512;
pub(super) const SLOT_LEN: u64 = 1024;

/// The encoded part of the header (`postcard`, see FORMAT.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderBody {
    /// The content's identity (equal to the publishing licence's).
    pub content_id: ContentId,
    /// Plaintext bytes per block.
    pub block_size: u32,
    /// Cipher id (1: AES-256-GCM).
    pub cipher: u8,
    /// HKDF output telling a wrong key from tampering.
    pub key_check: [u8; 16],
    /// The owner-signed publishing licence.
    pub licence: PublishingLicence,
    /// Room for later, e.g. writers' signatures: `(kind, bytes)` pairs. A
    /// reader rejects kinds it does not know that are marked critical
    /// (high bit of `kind` set) and ignores the others.
    pub extensions: Vec<(u16, Vec<u8>)>,
}

/// A parsed header with its exact bytes and derived positions.
#[derive(Clone, Debug)]
pub struct FileHeader {
    /// The decoded body.
    pub body: HeaderBody,
    /// The publishing licence body, decoded (signature not yet checked).
    pub licence: PublishingLicenceBody,
    /// Prefix, body and MAC exactly as stored.
    pub bytes: Vec<u8>,
    /// SHA-256 of `bytes`: bound into every block and state seal.
    pub hash: Sha256Digest,
    /// Block layout.
    pub geometry: Geometry,
}

impl FileHeader {
    /// Builds the header of a new file, from a licence this process just
    /// signed (see [`with_extensions`](Self::with_extensions)).
    pub fn new(licence: PublishingLicence, cek: &ContentKey, block_size: u32) -> Result<Self, FormatError> {
        Self::with_extensions(licence, cek, block_size, Vec::new())
    }

    /// Builds the header of a new file carrying `extensions` (see
    /// [`HeaderBody::extensions`]). The licence must be one this process
    /// just signed: its signature is remembered as good without a check.
    pub fn with_extensions(
        licence: PublishingLicence,
        cek: &ContentKey,
        block_size: u32,
        extensions: Vec<(u16, Vec<u8>)>,
    ) -> Result<Self, FormatError> {
        let pl = licence
            .decode_unverified()
            .map_err(|_| FormatError::HeaderMalformed("publishing licence"))?;
        let keys = FileKeys::derive(cek, &pl.content_id);
        let body = HeaderBody {
            content_id: pl.content_id,
            block_size,
            cipher: CIPHER_AES256GCM,
            key_check: keys.check,
            licence,
            extensions,
        };
        let enc = postcard::to_stdvec(&body).expect("headers always encode");
        if enc.len() as u64 > MAX_HEADER_BODY as u64 {
            return Err(FormatError::HeaderMalformed("header too large"));
        }
        let mut bytes = Vec::with_capacity(enc.len() + 46);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&VERSION.to_be_bytes());
        bytes.extend_from_slice(&(enc.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&enc);
        let mac = hmac_sha256(keys.header.as_ref(), &[&bytes]);
        bytes.extend_from_slice(&mac);
        Self::parse(bytes)
    }

    /// Parses header bytes (prefix, body, MAC) without any key.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, FormatError> {
        let n = check_prefix(&bytes)?;
        if (bytes.len() as u64) < PREFIX_LEN + n + MAC_LEN {
            return Err(FormatError::HeaderTruncated);
        }
        let raw = &bytes[PREFIX_LEN as usize..(PREFIX_LEN + n) as usize];
        let (body, rest): (HeaderBody, _) =
            postcard::take_from_bytes(raw).map_err(|_| FormatError::HeaderMalformed("header body does not decode"))?;
        if !rest.is_empty() {
            return Err(FormatError::HeaderMalformed("bytes after the header body"));
        }
        if body.cipher != CIPHER_AES256GCM {
            return Err(FormatError::HeaderMalformed("unknown cipher"));
        }
        if !body.block_size.is_power_of_two() || !(512..=1 << 20).contains(&body.block_size) {
            return Err(FormatError::HeaderMalformed(
                "block size must be a power of two from 512 to 1 MiB",
            ));
        }
        if body.extensions.iter().any(|(kind, _)| kind & 0x8000 != 0) {
            return Err(FormatError::HeaderMalformed("unknown critical extension"));
        }
        let licence = body
            .licence
            .decode_unverified()
            .map_err(|_| FormatError::HeaderMalformed("publishing licence does not decode"))?;
        if licence.content_id != body.content_id {
            return Err(FormatError::HeaderMalformed(
                "content id differs from the publishing licence's",
            ));
        }
        let len = PREFIX_LEN + n + MAC_LEN;
        let mut bytes = bytes;
        bytes.truncate(len as usize);
        let state_offset = len.div_ceil(STATE_ALIGN) * STATE_ALIGN;
        Ok(Self {
            hash: sha256(&bytes),
            geometry: Geometry {
                data_offset: state_offset + 2 * SLOT_LEN,
                block_size: body.block_size as u64,
            },
            body,
            licence,
            bytes,
        })
    }

    /// The content id.
    pub fn content_id(&self) -> ContentId {
        self.body.content_id
    }

    /// The bytes of the first extension of `kind`, if any.
    pub fn extension(&self, kind: u16) -> Option<&[u8]> {
        self.body
            .extensions
            .iter()
            .find(|(k, _)| *k == kind)
            .map(|(_, v)| v.as_slice())
    }

    /// Where the two state slots start.
    pub(super) fn state_offset(&self) -> u64 {
        self.geometry.data_offset - 2 * SLOT_LEN
    }

    /// Checks the key, the header MAC and the owner's signature. In that
    /// order, so that a wrong key is reported as such and not as tampering.
    /// A signature found good in `caches` before is not checked again.
    pub(super) fn authenticate(&self, keys: &FileKeys, caches: Option<&Caches>) -> Result<(), FormatError> {
        self.check(keys, caches, true)
    }

    /// [`authenticate`](Self::authenticate) for a header whose publishing
    /// licence this process has just signed: all but the signature's
    /// Ed25519 maths (see `PublishingLicence::verify_signed_here`).
    pub(super) fn authenticate_signed_here(&self, keys: &FileKeys, caches: Option<&Caches>) -> Result<(), FormatError> {
        self.check(keys, caches, false)
    }

    fn check(&self, keys: &FileKeys, caches: Option<&Caches>, maths: bool) -> Result<(), FormatError> {
        if !ct_eq(&keys.check, &self.body.key_check) {
            return Err(FormatError::WrongKey);
        }
        let split = self.bytes.len() - MAC_LEN as usize;
        let mac = hmac_sha256(keys.header.as_ref(), &[&self.bytes[..split]]);
        if !ct_eq(&mac, &self.bytes[split..]) {
            return Err(FormatError::HeaderTampered("header MAC"));
        }
        if caches.is_none_or(|c| c.signatures.get(&self.hash).is_none()) {
            let certs = caches.map(|c| &c.certs);
            let licence = &self.body.licence;
            if maths {
                licence.verify_with(certs)
            } else {
                licence.verify_signed_here(certs)
            }
            .map_err(|_| FormatError::HeaderTampered("publishing licence signature"))?;
            if let Some(c) = caches {
                c.signatures.put(self.hash, ());
            }
        }
        Ok(())
    }

    /// The plaintext length of a protected file of `size` bytes on disk.
    pub fn plaintext_len(&self, size: u64) -> Result<u64, FormatError> {
        self.geometry.plaintext_len(size)
    }
}

pub(super) fn check_prefix(bytes: &[u8]) -> Result<u64, FormatError> {
    if bytes.is_empty() {
        return Err(FormatError::Empty);
    }
    let m = bytes.len().min(MAGIC.len());
    if bytes[..m] != MAGIC[..m] {
        return Err(FormatError::NotProtected);
    }
    if bytes.len() < PREFIX_LEN as usize {
        return Err(FormatError::HeaderTruncated);
    }
    let version = u16::from_be_bytes([bytes[8], bytes[9]]);
    if version != VERSION {
        return Err(FormatError::UnsupportedVersion(version));
    }
    let n = u32::from_be_bytes(bytes[10..14].try_into().unwrap());
    if n > MAX_HEADER_BODY {
        return Err(FormatError::HeaderMalformed("header length over 64 KiB"));
    }
    Ok(n as u64)
}
