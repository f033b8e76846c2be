//! Real programs on a real mount: editors, version control, databases,
//! archivers and copy tools, mmap and concurrent appends. Each test checks
//! content (exact bytes or checksums), then unmounts and checks that the
//! source holds the same content, protected, and no plaintext.

mod fs_check;
mod fs_support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fs_check::{Entry, sums, tree, unmount_and_check_source};
use fs_support::{Fixture, names, pattern, sh, sha};

/// Lines of text that differ from each other, for editors and sed.
fn text(lines: usize) -> String {
    (0..lines).map(|i| format!("line {i:05} foo and more foo\n")).collect()
}

#[test]
fn vim_edits_and_saves_with_a_swap_file() {
    let mut fx = Fixture::new();
    let f = fx.mnt().join("notes.txt");
    let before = text(2000);
    std::fs::write(&f, &before).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let seen = outside.path().join("swap");
    let probe = format!(
        "call writefile([swapname('%'), filereadable(swapname('%'))], '{}')",
        seen.display()
    );
    let o = Command::new("vim")
        .args([
            "-es",
            "-N",
            "-u",
            "NONE",
            "-i",
            "NONE",
            "-c",
            "set swapfile directory=.",
        ])
        .args(["-c", &probe, "-c", "%s/foo/bar/g", "-c", "wq", "notes.txt"])
        .current_dir(fx.mnt())
        .output()
        .unwrap();
    assert!(o.status.success(), "vim failed: {o:?}");
    let probe = std::fs::read_to_string(&seen).unwrap();
    let mut probe = probe.lines();
    let swap = PathBuf::from(probe.next().unwrap());
    assert_eq!(swap.file_name().unwrap(), ".notes.txt.swp", "vim used {swap:?}");
    assert!(swap.starts_with(fx.mnt()), "swap file {swap:?} not in the mount");
    assert_eq!(probe.next(), Some("1"), "the swap file was not created in the mount");
    let after = before.replace("foo", "bar");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), after);
    assert_eq!(names(&fx.mnt()), ["notes.txt"], "vim left files behind");
    let shown = unmount_and_check_source(&mut fx);
    assert_eq!(
        shown.get(Path::new("notes.txt")),
        Some(&Entry::File(after.into_bytes()))
    );
}

#[test]
fn sed_edits_in_place() {
    let mut fx = Fixture::new();
    std::fs::create_dir(fx.mnt().join("d")).unwrap();
    let f = fx.mnt().join("d/conf.txt");
    let before = text(3000);
    std::fs::write(&f, &before).unwrap();
    sh(&fx.mnt(), "sed -i 's/foo/sed-was-here/g; 7d' d/conf.txt");
    let mut expected: Vec<String> = before.lines().map(|l| l.replace("foo", "sed-was-here")).collect();
    expected.remove(6);
    let expected = expected.iter().map(|l| format!("{l}\n")).collect::<String>();
    assert_eq!(std::fs::read_to_string(&f).unwrap(), expected);
    assert_eq!(names(&fx.mnt().join("d")), ["conf.txt"]);
    unmount_and_check_source(&mut fx);
}

#[test]
fn python_atomic_save_replaces_the_file() {
    let mut fx = Fixture::new();
    std::fs::write(fx.mnt().join("doc.txt"), b"old content\n".repeat(500)).unwrap();
    let script = r#"
import os
new = b"".join(b"new line %05d\n" % i for i in range(7000))
fd = os.open("doc.txt.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
view = memoryview(new)
while view:
    n = os.write(fd, view[:10000])
    view = view[n:]
os.fsync(fd)
os.close(fd)
os.replace("doc.txt.tmp", "doc.txt")
dfd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
os.fsync(dfd)
os.close(dfd)
"#;
    sh(&fx.mnt(), &format!("python3 -c '{script}'"));
    let expected: Vec<u8> = (0..7000)
        .flat_map(|i| format!("new line {i:05}\n").into_bytes())
        .collect();
    assert_eq!(std::fs::read(fx.mnt().join("doc.txt")).unwrap(), expected);
    assert_eq!(names(&fx.mnt()), ["doc.txt"]);
    let shown = unmount_and_check_source(&mut fx);
    assert_eq!(shown.len(), 1);
    let mut src = names(&fx.src());
    src.retain(|n| n != ".rightsfs");
    assert_eq!(src, ["doc.txt.rights"]);
}

/// Working-tree checksums of a git repository (without `.git`).
fn worktree(repo: &Path) -> BTreeMap<PathBuf, String> {
    let mut s = sums(repo);
    s.retain(|p, _| !p.starts_with(".git"));
    s
}

#[test]
fn git_commits_branches_and_checks_out() {
    let mut fx = Fixture::new();
    let git = "git -c user.name=Tester -c user.email=tester@example.com -c init.defaultBranch=main \
               -c core.fsync=all -c gc.auto=0";
    let repo = fx.mnt().join("repo");
    std::fs::create_dir(&repo).unwrap();
    std::fs::create_dir_all(repo.join("src/deep")).unwrap();
    std::fs::write(repo.join("README"), text(40)).unwrap();
    std::fs::write(repo.join("src/lib.rs"), "pub fn f() -> u32 { 7 }\n").unwrap();
    std::fs::write(repo.join("src/deep/data.bin"), pattern(70_000, 1)).unwrap();
    std::fs::write(repo.join("empty"), b"").unwrap();
    sh(
        &repo,
        &format!("{git} init -q . && {git} add -A && {git} commit -q -m first"),
    );
    let main = worktree(&repo);
    sh(&repo, &format!("{git} checkout -q -b feature"));
    std::fs::write(repo.join("README"), text(41)).unwrap();
    std::fs::remove_file(repo.join("src/deep/data.bin")).unwrap();
    std::fs::write(repo.join("src/new.txt"), pattern(5000, 2)).unwrap();
    sh(&repo, &format!("{git} add -A && {git} commit -q -m second"));
    let feature = worktree(&repo);
    assert_ne!(main, feature);
    sh(&repo, &format!("{git} checkout -q main"));
    assert_eq!(worktree(&repo), main);
    assert_eq!(
        sha(&repo.join("src/deep/data.bin")),
        hex::encode(rightsfs::crypto::sha256(&pattern(70_000, 1)))
    );
    sh(&repo, &format!("{git} checkout -q feature"));
    assert_eq!(worktree(&repo), feature);
    assert_eq!(sh(&repo, &format!("{git} status --porcelain")), "");
    assert_eq!(sh(&repo, &format!("{git} rev-list --count HEAD")), "2\n");
    sh(&repo, &format!("{git} fsck --strict --full --no-progress"));
    unmount_and_check_source(&mut fx);
    fx.mount();
    sh(&repo, &format!("{git} fsck --strict --full --no-progress"));
    assert_eq!(sh(&repo, &format!("{git} status --porcelain")), "");
    sh(&repo, &format!("{git} checkout -q main"));
    assert_eq!(worktree(&repo), main);
}

const FILL: &str = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) \
                    INSERT INTO t(v, pad) SELECT printf('row-%05d', x), randomblob(200) FROM c;";
const QUERY: &str = "SELECT count(*), sum(id), min(v), max(v) FROM t;";

#[test]
fn sqlite_with_a_rollback_journal() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    sh(
        &m,
        &format!("sqlite3 db.sqlite \"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB); {FILL}\""),
    );
    sh(
        &m,
        "sqlite3 db.sqlite \"DELETE FROM t WHERE id % 3 = 0; UPDATE t SET v = v || '!' WHERE id = 1;\"",
    );
    assert_eq!(
        sh(&m, &format!("sqlite3 db.sqlite '{QUERY}'")),
        "2000|3000000|row-00001!|row-02999\n"
    );
    assert_eq!(sh(&m, "sqlite3 db.sqlite 'PRAGMA integrity_check;'"), "ok\n");
    assert_eq!(names(&m), ["db.sqlite"]);
    unmount_and_check_source(&mut fx);
    fx.mount();
    assert_eq!(
        sh(&m, &format!("sqlite3 db.sqlite '{QUERY}'")),
        "2000|3000000|row-00001!|row-02999\n"
    );
}

#[test]
fn sqlite_in_wal_mode() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    assert_eq!(
        sh(
            &m,
            "sqlite3 db.sqlite 'PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, pad BLOB);'"
        ),
        "wal\n"
    );
    // One process keeps the database (and its WAL and shared-memory
    // index) open while others write and read.
    let mut holder = Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import sqlite3, sys
c = sqlite3.connect("db.sqlite", isolation_level=None)
c.execute("SELECT count(*) FROM t").fetchone()
print("ready", flush=True)
sys.stdin.readline()
print(c.execute("SELECT count(*), sum(id), min(v), max(v) FROM t").fetchone(), flush=True)
"#,
        )
        .current_dir(&m)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    sh(&m, &format!("sqlite3 db.sqlite \"{FILL}\""));
    sh(&m, "sqlite3 db.sqlite 'DELETE FROM t WHERE id % 3 = 0;'");
    assert!(m.join("db.sqlite-wal").exists() && m.join("db.sqlite-shm").exists());
    assert_eq!(
        sh(&m, &format!("sqlite3 db.sqlite '{QUERY}'")),
        "2000|3000000|row-00001|row-02999\n"
    );
    std::io::Write::write_all(holder.stdin.as_mut().unwrap(), b"\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "(2000, 3000000, 'row-00001', 'row-02999')\n");
    assert!(holder.wait().unwrap().success());
    assert_eq!(
        names(&m),
        ["db.sqlite"],
        "the last connection removes the WAL and index"
    );
    assert_eq!(
        sh(&m, "sqlite3 db.sqlite 'PRAGMA integrity_check; PRAGMA journal_mode;'"),
        "ok\nwal\n"
    );
    unmount_and_check_source(&mut fx);
    fx.mount();
    assert_eq!(
        sh(&m, &format!("sqlite3 db.sqlite '{QUERY}'")),
        "2000|3000000|row-00001|row-02999\n"
    );
}

/// A small tree with sizes around block boundaries, an empty file, a
/// nested folder, a symbolic link and a hard link.
fn sample_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    for (i, len) in [0usize, 1, 100, 4095, 4096, 4097, 8192, 12_289, 100_000, 1_048_577]
        .iter()
        .enumerate()
    {
        std::fs::write(root.join(format!("f{len}")), pattern(*len, i as u64)).unwrap();
    }
    std::fs::write(root.join("a/b/c/deep.txt"), text(100)).unwrap();
    std::fs::write(root.join("a/notes.md"), "# notes\n").unwrap();
    std::os::unix::fs::symlink("b/c/deep.txt", root.join("a/link")).unwrap();
    std::fs::hard_link(root.join("f4097"), root.join("a/hard")).unwrap();
    sh(root, "touch -d '2001-02-03 04:05:06' f100 a/b/c/deep.txt");
}

fn mtime(p: &Path) -> i64 {
    std::os::unix::fs::MetadataExt::mtime(&std::fs::symlink_metadata(p).unwrap())
}

#[test]
fn tar_extracts_into_and_archives_out_of_the_mount() {
    let mut fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    sample_tree(&plain);
    sh(tmp.path(), "tar cf in.tar -C plain .");
    std::fs::create_dir(fx.mnt().join("x")).unwrap();
    sh(
        &fx.mnt(),
        &format!("tar xf {} -C x", tmp.path().join("in.tar").display()),
    );
    let inside = fx.mnt().join("x");
    assert_eq!(tree(&inside), tree(&plain));
    assert_eq!(mtime(&inside.join("f100")), mtime(&plain.join("f100")));
    assert_eq!(
        mtime(&inside.join("a/b/c/deep.txt")),
        mtime(&plain.join("a/b/c/deep.txt"))
    );
    sh(
        &fx.mnt(),
        &format!("tar cf {} -C x .", tmp.path().join("out.tar").display()),
    );
    sh(tmp.path(), "mkdir back && tar xf out.tar -C back");
    assert_eq!(tree(&tmp.path().join("back")), tree(&plain));
    assert_eq!(mtime(&tmp.path().join("back/f100")), mtime(&plain.join("f100")));
    unmount_and_check_source(&mut fx);
}

#[test]
fn cp_a_round_trip() {
    let mut fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    sample_tree(&plain);
    let m = fx.mnt();
    sh(tmp.path(), &format!("cp -a plain {}", m.join("cp").display()));
    assert_eq!(tree(&m.join("cp")), tree(&plain));
    assert_eq!(mtime(&m.join("cp/f100")), mtime(&plain.join("f100")));
    sh(tmp.path(), &format!("cp -a {} back", m.join("cp").display()));
    assert_eq!(tree(&tmp.path().join("back")), tree(&plain));
    unmount_and_check_source(&mut fx);
}

#[test]
fn rsync_a_round_trip() {
    let mut fx = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    sample_tree(&plain);
    let m = fx.mnt();
    sh(tmp.path(), &format!("rsync -a plain/ {}/", m.join("rs").display()));
    assert_eq!(tree(&m.join("rs")), tree(&plain));
    // A second pass after a change updates in place of the old copy.
    std::fs::write(plain.join("a/notes.md"), "# notes, changed\n").unwrap();
    sh(
        tmp.path(),
        &format!("rsync -a --checksum plain/ {}/", m.join("rs").display()),
    );
    assert_eq!(tree(&m.join("rs")), tree(&plain));
    sh(tmp.path(), &format!("rsync -a {}/ back/", m.join("rs").display()));
    assert_eq!(tree(&tmp.path().join("back")), tree(&plain));
    assert_eq!(mtime(&tmp.path().join("back/f100")), mtime(&plain.join("f100")));
    unmount_and_check_source(&mut fx);
}

#[test]
fn mmap_reads_and_writes() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    let original = pattern(3 * 4096 + 123, 9);
    std::fs::write(m.join("map.bin"), &original).unwrap();
    let script = r#"
import mmap, hashlib, sys
with open("map.bin", "r+b") as f:
    mm = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    print(hashlib.sha256(mm[:]).hexdigest())
    mm[100:105] = b"HELLO"
    mm[4090:4102] = b"straddling!!"
    mm[len(mm) - 1:] = b"Z"
    mm.flush()
    mm.close()
"#;
    let out = sh(&m, &format!("python3 -c '{script}'"));
    assert_eq!(
        out.trim(),
        hex::encode(rightsfs::crypto::sha256(&original)),
        "mmap read"
    );
    let mut expected = original.clone();
    expected[100..105].copy_from_slice(b"HELLO");
    expected[4090..4102].copy_from_slice(b"straddling!!");
    *expected.last_mut().unwrap() = b'Z';
    assert_eq!(std::fs::read(m.join("map.bin")).unwrap(), expected);
    unmount_and_check_source(&mut fx);
    fx.mount();
    assert_eq!(std::fs::read(m.join("map.bin")).unwrap(), expected);
    let out = sh(
        &m,
        "python3 -c 'import mmap, hashlib; f = open(\"map.bin\", \"rb\"); \
         print(hashlib.sha256(mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)[:]).hexdigest())'",
    );
    assert_eq!(
        out.trim(),
        hex::encode(rightsfs::crypto::sha256(&expected)),
        "mmap read after remount"
    );
}

#[test]
fn concurrent_appends_keep_every_line() {
    let mut fx = Fixture::new();
    let m = fx.mnt();
    std::fs::write(m.join("log.txt"), b"").unwrap();
    let script = r#"
import os, sys
tag = sys.argv[1]
fd = os.open("log.txt", os.O_WRONLY | os.O_APPEND)
for i in range(500):
    line = ("%s %03d %s\n" % (tag, i, tag * (i % 97))).encode()
    assert os.write(fd, line) == len(line)
os.close(fd)
"#;
    let spawn = |tag: &str| {
        Command::new("python3")
            .args(["-c", script, tag])
            .current_dir(&m)
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn("a"), spawn("b"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let got = std::fs::read_to_string(m.join("log.txt")).unwrap();
    let lines: Vec<&str> = got.lines().collect();
    assert_eq!(lines.len(), 1000, "lines lost or merged");
    for tag in ["a", "b"] {
        let mine: Vec<String> = lines
            .iter()
            .filter(|l| l.starts_with(tag))
            .map(|l| l.to_string())
            .collect();
        let want: Vec<String> = (0..500)
            .map(|i| format!("{tag} {i:03} {}", tag.repeat(i % 97)))
            .collect();
        assert_eq!(mine, want, "lines of {tag} damaged or out of order");
    }
    unmount_and_check_source(&mut fx);
}
