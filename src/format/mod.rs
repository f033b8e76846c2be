//! The protected-file format, version 2 (specified in `docs/FORMAT.md`).
//!
//! A protected file is a signed header, two sealed state slots (each with
//! its writer's signed record) and a run of AES-256-GCM blocks.
//!
//! The modules here are the codec: they turn byte slices into headers,
//! states, writer records and blocks and back, with a content key and a
//! server key they are given, and touch no file, thread or network; a
//! reader of the format (the viewer's spec, the vectors) needs only them.
//! `store` is the journaled file store built on the codec: a
//! [`ProtectedFile`] on disk with random access, its redo journal and its
//! sealing threads. Neither knows of licence stores or FUSE.

mod block;
mod caches;
mod error;
mod fresh;
mod geometry;
mod header;
mod keys;
mod removed;
mod state;
mod store;
mod writer;

pub use block::Wiped;
pub use caches::{Caches, Verifier};
pub use error::FormatError;
pub use fresh::Fresh;
pub use geometry::Geometry;
pub use header::{DEFAULT_BLOCK_SIZE, FileHeader, HeaderBody, MAGIC, MAX_HEADER_BODY, VERSION};
pub use removed::RemovedDevices;
pub use store::known_tags::DEFAULT_BUDGET as DEFAULT_TAG_MEMORY;
#[cfg(feature = "mount")]
pub(crate) use store::read_up_to;
pub use store::{JournalDir, Leave, ProtectedFile, Recovery, read_header};
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
