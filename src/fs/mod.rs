//! The FUSE mount: a folder of protected files shown decrypted.
//!
//! `NAME.rights` in the source appears as `NAME` with its plaintext size;
//! reads decrypt only the blocks asked for and writes reseal only the blocks
//! they touch, through one shared [`crate::format::ProtectedFile`] per
//! inode. Files created in the mount are protected at once with the
//! folder's default policy (no network round trip). Writes are crash-safe
//! through the format's journal, kept in `SRC/.rightsfs/journal`.
//!
//! Keys come from a [`KeySource`]; the mount never talks to the server
//! itself. Files without the suffix are shown read-only: a write through
//! the mount would land in plaintext.

mod access;
mod activity;
mod attr;
mod beneath;
mod create;
mod facts_index;
mod header_facts;
mod inodes;
mod io;
mod linger;
mod listings;
mod lookup;
mod memory;
mod mount;
mod names;
mod node;
mod nodes;
mod open;
mod ops;
mod ownership;
mod perm;
mod prune;
mod readdir;
mod recover;
mod registry;
mod remove;
mod rename;
mod save;
mod setattr;
mod stat;
mod state;
mod statfs;
mod sync;
mod views;
mod vouch;

pub use access::{DefaultPolicy, KeySource};
pub use activity::Activity;
pub use linger::DEFAULT_WINDOW as DEFAULT_BUSY_POLL;
pub use memory::tune_allocator;
pub use mount::{MountConfig, MountError, Mounted, block_signals, check, run, spawn};
pub use names::{POLICY_FILE, STATE_DIR, is_side_file};
pub use prune::DEFAULT_MAX_INODES;
pub use registry::{
    DetachError, MountRecord, RecoveryNote, UnmountError, detach, find, is_mounted, list, pid_alive, unmount,
    unmount_all,
};
