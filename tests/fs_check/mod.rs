//! Checks shared by the mount tests that run real programs: what the mount
//! shows is recorded, the mount is taken down, and the source must hold the
//! same content, protected, with no plaintext left beside it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::fs_support::Fixture;

/// What one entry of a tree holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A folder.
    Dir,
    /// A regular file and its bytes.
    File(Vec<u8>),
    /// A symbolic link and its target.
    Link(PathBuf),
    /// A FIFO, socket or device node (its file type bits).
    Special(u32),
}

/// Every entry under `root` (relative paths, sorted), read through the
/// filesystem `root` is on.
pub fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Entry>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        let rel = p.strip_prefix(root).unwrap().to_path_buf();
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.insert(rel, Entry::Dir);
            walk(root, &p, out);
        } else if md.is_symlink() {
            out.insert(rel, Entry::Link(std::fs::read_link(&p).unwrap()));
        } else if md.is_file() {
            out.insert(rel, Entry::File(std::fs::read(&p).unwrap()));
        } else {
            out.insert(rel, Entry::Special(special(&md)));
        }
    }
}

fn special(md: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::MetadataExt;
    md.mode() & libc::S_IFMT
}

/// SHA-256 of every regular file under `root`, by relative path.
pub fn sums(root: &Path) -> BTreeMap<PathBuf, String> {
    tree(root)
        .into_iter()
        .filter_map(|(p, e)| match e {
            Entry::File(b) => Some((p, hex::encode(rightsfs::crypto::sha256(&b)))),
            _ => None,
        })
        .collect()
}

/// The name a source file shows as, with the suffix: a long name's hashed
/// file gives the name in its side file; `None` for the side file itself.
fn shown_name(src: &Path, rel: &Path) -> Option<String> {
    let file = rel.file_name().unwrap().to_string_lossy().into_owned();
    let Some(hash) = file.strip_prefix(".rights-long-") else {
        return Some(rel.to_string_lossy().into_owned());
    };
    if hash.ends_with(".name") {
        return None;
    }
    let stem = hash.strip_suffix(".rights").expect("long name file");
    let side = src.join(rel.with_file_name(format!(".rights-long-{stem}.name")));
    let name = std::fs::read_to_string(&side).unwrap_or_else(|e| panic!("{side:?}: {e}"));
    Some(
        rel.with_file_name(format!("{name}.rights"))
            .to_string_lossy()
            .into_owned(),
    )
}

/// Records the mount's tree, unmounts, and checks the source against it:
/// every regular file in the source (outside the state folder) is
/// `NAME.rights`, decrypts to exactly what the mount showed as `NAME`, and
/// every file the mount showed is there. Returns the recorded tree.
pub fn unmount_and_check_source(fx: &mut Fixture) -> BTreeMap<PathBuf, Entry> {
    let shown = tree(&fx.mnt());
    fx.unmount();
    let mut seen = BTreeMap::new();
    let src = fx.src();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if dir == src && p.file_name().is_some_and(|n| n == ".rightsfs") {
                continue;
            }
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(&src).unwrap().to_path_buf();
            if md.is_dir() {
                assert_eq!(
                    shown.get(&rel),
                    Some(&Entry::Dir),
                    "folder {rel:?} not shown by the mount"
                );
                stack.push(p);
            } else if md.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                assert_eq!(shown.get(&rel), Some(&Entry::Link(t)), "link {rel:?} differs");
            } else if !md.is_file() {
                let kind = Entry::Special(special(&md));
                assert_eq!(shown.get(&rel), Some(&kind), "{rel:?} differs");
            } else {
                let Some(name) = shown_name(&src, &rel) else { continue };
                let plain = name
                    .strip_suffix(".rights")
                    .unwrap_or_else(|| panic!("plaintext file in the source: {name}"));
                let bytes = fx.decrypt(&p);
                match shown.get(Path::new(plain)) {
                    Some(Entry::File(b)) => assert!(
                        *b == bytes,
                        "{plain}: source decrypts to {} bytes, the mount showed {}",
                        bytes.len(),
                        b.len()
                    ),
                    other => panic!("{plain}: in the source but the mount showed {other:?}"),
                }
                seen.insert(PathBuf::from(plain), ());
            }
        }
    }
    for (p, e) in &shown {
        if let Entry::File(_) = e {
            assert!(seen.contains_key(p), "{p:?} shown by the mount but not in the source");
        }
    }
    shown
}
