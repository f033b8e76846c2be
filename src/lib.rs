//! rightsfs: protected files, a licensing server and a FUSE mount.
//!
//! Each part is a cargo feature (all on by default), so that a program that
//! only reads or writes protected files builds the codec without the
//! network, database and FUSE crates the others need:
//! `format` (crypto, policy, format), `licence` (the device's licence
//! store), `client`, `mount` (the `fs` module), `server` (with its `store`)
//! and `cli` (the `rights` command, which needs client and mount). The
//! wire types of the HTTP API (`api`) come with `client` or `server`.

#![deny(unsafe_code)]

#[cfg(any(feature = "client", feature = "server"))]
pub mod api;
#[cfg(feature = "licence")]
pub mod background;
#[cfg(feature = "format")]
pub mod cache;
#[cfg(feature = "cli")]
pub mod cli;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "format")]
pub mod crypto;
#[cfg(feature = "format")]
pub mod dirfd;
#[cfg(feature = "licence")]
pub mod durable;
#[cfg(feature = "format")]
pub mod format;
#[cfg(feature = "mount")]
pub mod fs;
#[cfg(feature = "licence")]
pub mod licence;
#[cfg(feature = "format")]
pub mod policy;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "format")]
#[allow(unsafe_code)]
pub mod sys;
