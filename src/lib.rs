//! rightsfs: protected files, a licensing server and a FUSE mount.

pub mod crypto;
pub mod format;
pub mod policy;
pub mod server;
pub mod store;
