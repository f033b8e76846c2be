//! Recovery never destroys ciphertext without proof of a crash: protected
//! files written through a real `rights mount --daemon`, left in three
//! ways (closed without fsync, fsynced, the daemon killed in the middle of
//! writing), are then damaged in the source folder in five ways (cut by
//! 1 byte, by 100 bytes, at a block boundary; junk appended; a byte
//! flipped). The next open through the mount must fail with EIO and leave
//! every byte as it was, except where a killed daemon's change log
//! justifies cutting what it wrote past its last commit (the committed
//! content then reads back whole).

mod cli_support;

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use cli_support::daemon::{Daemon, mount_log};
use cli_support::{Server, User};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Left {
    ClosedUnsynced,
    Fsynced,
    KilledMidWrite,
}

#[derive(Clone, Copy, Debug)]
enum Damage {
    Cut1,
    Cut100,
    CutAtBlock,
    JunkAppended,
    ByteFlipped,
}

const DAMAGES: [Damage; 5] = [
    Damage::Cut1,
    Damage::Cut100,
    Damage::CutAtBlock,
    Damage::JunkAppended,
    Damage::ByteFlipped,
];

/// The committed content of a file.
const COMMITTED: usize = 100_000;
/// What a killed writer added after its last commit.
const TAIL: usize = 30_000;

fn content(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(seed as u32 % 31) as u8 ^ seed)
        .collect()
}

/// Changes the source file as `damage` says; its bytes afterwards.
fn damage(path: &Path, how: Damage) -> Vec<u8> {
    let h = rightsfs::format::read_header(&File::open(path).unwrap()).unwrap();
    let g = h.geometry;
    let f = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let size = f.metadata().unwrap().len();
    match how {
        Damage::Cut1 => f.set_len(size - 1).unwrap(),
        Damage::Cut100 => f.set_len(size - 100).unwrap(),
        Damage::CutAtBlock => {
            let last = (0..).take_while(|i| g.block_offset(*i) < size).last().unwrap();
            f.set_len(g.block_offset(last)).unwrap();
        }
        Damage::JunkAppended => f.write_all_at(&[0x5a; 333], size).unwrap(),
        Damage::ByteFlipped => {
            // Inside committed data (block 3), where no crash explains it.
            let at = g.block_offset(3) + 200;
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, at).unwrap();
            f.write_all_at(&[b[0] ^ 0x10], at).unwrap();
        }
    }
    drop(f);
    std::fs::read(path).unwrap()
}

/// `cat` of a file through the mount: its output, or its error message.
fn cat(path: &Path) -> Result<Vec<u8>, String> {
    let o = Command::new("cat").arg(path).stdin(Stdio::null()).output().unwrap();
    if o.status.success() {
        Ok(o.stdout)
    } else {
        Err(String::from_utf8_lossy(&o.stderr).into_owned())
    }
}

/// Leaves `name` in the mount as `left` says. The writer of a killed
/// daemon is a Python process that commits `COMMITTED` bytes (fsync), then
/// writes `TAIL` more and waits; the caller kills the daemon.
fn leave(mnt: &Path, name: &str, left: Left, data: &[u8], work: &Path) -> Option<std::process::Child> {
    let target = mnt.join(name);
    match left {
        Left::ClosedUnsynced => {
            let plain = work.join(name);
            std::fs::write(&plain, data).unwrap();
            let st = Command::new("cp").arg(&plain).arg(&target).status().unwrap();
            assert!(st.success());
            None
        }
        Left::Fsynced => {
            let mut f = File::create(&target).unwrap();
            f.write_all(data).unwrap();
            f.sync_all().unwrap();
            None
        }
        Left::KilledMidWrite => {
            let ready = work.join(format!("{name}.ready"));
            let script = r#"
import os, sys, time
path, ready, n, t = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
data = sys.stdin.buffer.read()
fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
os.write(fd, data[:n])
os.fsync(fd)
os.pwrite(fd, data[n:n + t], n)
open(ready, 'w').close()
time.sleep(120)
"#;
            let mut child = Command::new("python3")
                .args(["-c", script])
                .arg(&target)
                .arg(&ready)
                .arg(COMMITTED.to_string())
                .arg(TAIL.to_string())
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut both = data.to_vec();
            both.extend(content(99, TAIL));
            child.stdin.take().unwrap().write_all(&both).unwrap();
            let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while !ready.exists() {
                assert!(child.try_wait().unwrap().is_none(), "the writer failed");
                assert!(std::time::Instant::now() < until, "the writer hangs");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Some(child)
        }
    }
}

/// Waits until the daemon `pid` holds no descriptor of `source`.
fn wait_closed(pid: u32, source: &Path) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let held = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == source))
    };
    while held() {
        assert!(std::time::Instant::now() < until, "{source:?} stays open in the daemon");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn damage_without_a_crash_is_never_repaired_away() {
    let server = Server::start();
    let user = User::new("recovery@example.com", true);
    user.signup(&server);
    let src = user.home.path().join("src");
    let mnt = user.home.path().join("mnt");
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(&user, &src, &mnt);
    let mut report = Vec::new();
    for (li, left) in [Left::ClosedUnsynced, Left::Fsynced, Left::KilledMidWrite]
        .into_iter()
        .enumerate()
    {
        // Every file of this row is written first, then the daemon is
        // killed (for the last row) once, then each is damaged and opened.
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut writers = Vec::new();
        for (di, how) in DAMAGES.into_iter().enumerate() {
            let name = format!("{left:?}-{how:?}.bin");
            let data = content((li * 5 + di) as u8 + 1, COMMITTED);
            writers.extend(leave(&mnt, &name, left, &data, work.path()));
            files.push((name, data));
        }
        if left == Left::KilledMidWrite {
            daemon.kill(&user);
            for mut w in writers {
                let _ = w.kill();
                let _ = w.wait();
            }
        }
        let sources: Vec<PathBuf> = files.iter().map(|(n, _)| src.join(format!("{n}.rights"))).collect();
        if let Some(pid) = daemon.pid {
            // FUSE sends the release of a closed file after close returns:
            // damage only what the daemon no longer holds open.
            for s in &sources {
                wait_closed(pid, s);
            }
        }
        let befores: Vec<Vec<u8>> = sources.iter().zip(DAMAGES).map(|(s, how)| damage(s, how)).collect();
        if left == Left::KilledMidWrite {
            daemon.restart(&user);
        }
        for (((name, data), how), (source, before)) in files.iter().zip(DAMAGES).zip(sources.iter().zip(befores)) {
            let got = cat(&mnt.join(name));
            let after = std::fs::read(source).unwrap();
            let cell = format!("{left:?} x {how:?}");
            let log = mount_log(&user);
            if let Err(why) = &got {
                assert!(why.contains("Input/output error"), "{cell}: {why}");
                assert!(
                    log.contains(&source.display().to_string()),
                    "{cell}: the log does not name the file"
                );
            }
            if matches!(how, Damage::ByteFlipped) {
                assert!(got.is_err(), "{cell}: a flipped committed byte read as data");
            }
            if left != Left::KilledMidWrite {
                assert!(got.is_err(), "{cell}: damage read as data; log:\n{log}");
                assert!(
                    after == before,
                    "{cell}: the open changed the source file ({} bytes, were {}); log:\n{log}",
                    after.len(),
                    before.len(),
                );
                report.push(format!("{cell}: EIO, every byte kept"));
                continue;
            }
            // A killed writer's change log justifies cutting what it wrote
            // past its last commit, and nothing else.
            assert!(
                after.len() <= before.len() && after[..] == before[..after.len()],
                "{cell}: more than a tail was changed; log:\n{log}"
            );
            match got {
                Ok(out) => {
                    assert!(&out == data, "{cell}: not the committed content ({} bytes)", out.len());
                    report.push(format!("{cell}: uncommitted tail cut, committed content read"));
                }
                Err(_) => report.push(format!(
                    "{cell}: EIO, {} bytes of uncommitted tail cut",
                    before.len() - after.len()
                )),
            }
        }
    }
    eprintln!("{}", report.join("\n"));

    // What is intact can still be copied out of a damaged file.
    let flipped = src.join("Fsynced-ByteFlipped.bin.rights");
    let o = user.run(&["cat", "--salvage", flipped.to_str().unwrap()]);
    assert!(!o.status.success(), "damage must not exit 0");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("bytes 12288..16384 are damaged"), "{err}");
    let mut want = content(10, COMMITTED);
    want[12288..16384].fill(0);
    assert!(
        o.stdout == want,
        "salvage wrote {} bytes, not the intact blocks",
        o.stdout.len()
    );
    let cut = src.join("Fsynced-Cut1.bin.rights");
    let before = std::fs::read(&cut).unwrap();
    let o = user.run(&["cat", "--salvage", cut.to_str().unwrap()]);
    assert!(!o.status.success());
    let last = (COMMITTED as u64 / 4096) * 4096;
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&format!("bytes {last}..{COMMITTED} are damaged")),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut want = content(6, COMMITTED);
    want[last as usize..].fill(0);
    assert!(o.stdout == want);
    assert!(std::fs::read(&cut).unwrap() == before, "salvage changed the file");
    daemon.unmount(&user);
}
