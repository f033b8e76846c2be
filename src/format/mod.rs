//! The protected-file format, version 2 (specified in `docs/FORMAT.md`).
//!
//! A protected file is a signed header, two sealed state slots (each with
//! its writer's signed record) and a run of AES-256-GCM blocks. This module
//! is pure: it reads and writes a `File` with a content key, checks writers
//! against a server key it is given, and knows nothing of networks, licence
//! stores or FUSE.

mod error;
mod fresh;
mod geometry;
mod header;
mod journal;
mod journal_dir;
mod keys;
mod known_tags;
mod protected;
mod state;
mod writer;

pub use error::FormatError;
pub use fresh::Fresh;
pub use geometry::Geometry;
pub use header::{DEFAULT_BLOCK_SIZE, FileHeader, HeaderBody, MAGIC, MAX_HEADER_BODY, VERSION, read_header};
pub use journal::Recovery;
pub use journal_dir::{JournalDir, Leave};
pub use known_tags::{DEFAULT_BUDGET as DEFAULT_TAG_MEMORY, set_budget as set_tag_memory};
pub use protected::ProtectedFile;
pub use writer::{MAX_RECORD, Writer, WrittenBy};

/// The suffix a protected file carries in the source folder.
pub const SUFFIX: &str = ".rights";

/// Most block seals allowed under one content key. With random 96-bit
/// nonces NIST SP 800-38D caps a key at 2^32 encryptions so that the chance
/// of a nonce collision stays below 2^-32; past it the file refuses writes
/// and must be re-protected under a fresh key.
pub const MAX_SEALS: u64 = 1 << 32;

/// Largest plaintext length the format addresses (keeps offsets far from
/// overflow).
pub const MAX_LEN: u64 = 1 << 60;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod writer_tests;
