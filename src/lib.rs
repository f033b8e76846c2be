//! rightsfs: protected files, a licensing server and a FUSE mount.

pub mod background;
pub mod cache;
pub mod cli;
pub mod client;
pub mod crypto;
pub mod durable;
pub mod format;
pub mod fs;
pub mod licence;
pub mod policy;
pub mod server;
pub mod store;
