//! Crash test of a real mount daemon: a writer process rewrites, appends,
//! truncates and fsyncs files through `rights mount --daemon` while the
//! daemon is killed with SIGKILL at random moments (also during fsync).
//! After each kill the dead mount is cleaned with `rights unmount --force`,
//! the folder is mounted again, and every file must open, decrypt, and hold
//! its last fsynced content or a later state made by a prefix of the writes
//! that completed after that fsync.

mod cli_support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cli_support::daemon::reap;
use cli_support::{Server, User};

const FILES: [&str; 3] = ["alpha.bin", "beta.txt", "gamma.dat"];
const ROUNDS: usize = 50;

/// The writer: reads its base content from the mount, then loops over
/// random opens, writes, appends, truncates and fsyncs until the mount
/// dies. Log lines (outside the mount, one write(2) each):
/// `S name sha|-` start state, `W name sha` after every completed change,
/// `R` once every start state is read, `B name` just before fsync, `F name sha` after a successful fsync.
const WRITER: &str = r#"
import os, sys, random, hashlib
mnt, log, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = sys.argv[4:]
rnd = random.Random(seed)
logf = open(log, 'a', buffering=1)
def h(b): return hashlib.sha256(b).hexdigest()
model = {}
for n in names:
    try:
        with open(os.path.join(mnt, n), 'rb') as f:
            model[n] = f.read()
    except FileNotFoundError:
        model[n] = None
    logf.write("S %s %s\n" % (n, h(model[n]) if model[n] is not None else '-'))
logf.write("R\n")
def pwrite_all(fd, b, off):
    done = 0
    while done < len(b):
        done += os.pwrite(fd, b[done:], off + done)
try:
    while True:
        n = rnd.choice(names)
        fd = os.open(os.path.join(mnt, n), os.O_RDWR | os.O_CREAT, 0o600)
        if model[n] is None:
            model[n] = b''
            logf.write("W %s %s\n" % (n, h(b'')))
        data = bytearray(model[n])
        for _ in range(rnd.randint(1, 6)):
            op = rnd.random()
            if op < 0.45:
                off = rnd.randint(0, len(data) + 5000)
                b = rnd.randbytes(rnd.choice([1, 100, 4096, rnd.randint(1, 40000)]))
                pwrite_all(fd, b, off)
                if off > len(data):
                    data.extend(bytes(off - len(data)))
                data[off:off + len(b)] = b
            elif op < 0.8 and len(data) < 300000:
                b = rnd.randbytes(rnd.randint(1, 20000))
                pwrite_all(fd, b, len(data))
                data.extend(b)
            else:
                size = rnd.randint(0, len(data) + 9000) if len(data) < 300000 else rnd.randint(0, 50000)
                os.ftruncate(fd, size)
                if size < len(data):
                    del data[size:]
                else:
                    data.extend(bytes(size - len(data)))
            model[n] = bytes(data)
            logf.write("W %s %s\n" % (n, h(data)))
        if rnd.random() < 0.6:
            logf.write("B %s\n" % n)
            os.fsync(fd)
            logf.write("F %s %s\n" % (n, h(data)))
        os.close(fd)
except OSError as e:
    logf.write("E %s\n" % e.errno)
"#;

/// Small deterministic generator (the seed is printed for reproduction).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Detaches the mount and kills the daemon even when the test fails.
struct Cleanup {
    mnt: PathBuf,
    pid: Option<u32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            // SAFETY: plain signal to the daemon this test started.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        if rightsfs::fs::is_mounted(&self.mnt) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.mnt).status();
        }
    }
}

fn sha(data: &[u8]) -> String {
    hex::encode(rightsfs::crypto::sha256(data))
}

fn json(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON ({e}): {out}"))
}

fn mount(user: &User, src: &Path, mnt: &Path) -> u32 {
    let out = user.ok(&[
        "--json",
        "mount",
        src.to_str().unwrap(),
        mnt.to_str().unwrap(),
        "--daemon",
    ]);
    json(&out)["pid"].as_u64().expect("daemon pid") as u32
}

/// The states a file may hold after a kill: from its last fsync (or the
/// state the round started from) on, every state a completed write made.
fn allowed(log: &str) -> HashMap<String, Vec<String>> {
    let mut per: HashMap<String, Vec<String>> = HashMap::new();
    for line in log.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f[0] {
            "S" | "F" => {
                per.insert(f[1].to_string(), vec![f[2].to_string()]);
            }
            "W" => per.get_mut(f[1]).expect("W after S").push(f[2].to_string()),
            _ => {}
        }
    }
    per
}

fn wait_exit(child: &mut Child, what: &str) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        assert!(Instant::now() < until, "{what} hangs after the daemon was killed");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the writer's log has `count` lines starting with `prefix`.
fn wait_for(log: &Path, writer: &mut Child, prefix: &str, count: usize) {
    let until = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with(prefix))
        .count()
        < count
    {
        if writer.try_wait().unwrap().is_some() {
            panic!(
                "the writer stopped early: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < until, "the writer hangs (no {prefix:?} line in 30 s)");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn mount_log_errors(user: &User) -> Vec<String> {
    let logs = user.home.path().join("data/rightsfs/logs");
    let mut out = Vec::new();
    for e in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        out.extend(text.lines().filter(|l| l.contains(" ERROR ")).map(str::to_string));
    }
    out
}

/// A server, a signed-up user with empty `src` and `mnt` folders, and a
/// work folder holding `script` as `NAME.py`.
struct Bench {
    _server: Server,
    user: User,
    src: PathBuf,
    mnt: PathBuf,
    work: tempfile::TempDir,
    script: PathBuf,
}

fn bench(email: &str, name: &str, script: &str) -> Bench {
    let server = Server::start();
    let user = User::new(email, true);
    user.signup(&server);
    let src = user.home.path().join("src");
    let mnt = user.home.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join(format!("{name}.py"));
    std::fs::write(&path, script).unwrap();
    Bench {
        _server: server,
        user,
        src,
        mnt,
        work,
        script: path,
    }
}

#[test]
fn killed_daemon_loses_nothing_fsynced_and_every_file_decrypts() {
    let Bench {
        _server,
        user,
        src,
        mnt,
        work,
        script,
    } = bench("crash@example.com", "writer", WRITER);

    let seed = std::env::var("FS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
        | 1;
    eprintln!("fs_crash seed {seed} (set FS_CRASH_SEED to repeat)");
    let mut rng = Rng(seed);

    // Orphaned daemons become children of this process, as they would of
    // an init that reaps late (or never, in a bare container).
    // SAFETY: plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut guard = Cleanup {
        mnt: mnt.clone(),
        pid: None,
    };
    guard.pid = Some(mount(&user, &src, &mnt));
    let (mut recoveries, mut during_fsync, mut journals_seen) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let pid = guard.pid.expect("mounted");
        let log = work.path().join(format!("round-{round}.log"));
        let mut writer = Command::new("python3")
            .arg(&script)
            .arg(&mnt)
            .arg(&log)
            .arg(rng.next().to_string())
            .args(FILES)
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        // Half of the kills land a random time into the loop, half just
        // after an fsync began (a random 0-3 ms later).
        wait_for(&log, &mut writer, "R", 1);
        if rng.below(2) == 0 {
            std::thread::sleep(Duration::from_millis(20 + rng.below(600)));
        } else {
            let want = 1 + rng.below(4) as usize;
            let until = Instant::now() + Duration::from_secs(20);
            while std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.starts_with("B "))
                .count()
                < want
            {
                assert!(
                    writer.try_wait().unwrap().is_none(),
                    "the writer stopped early: {log:?}"
                );
                assert!(Instant::now() < until, "the writer made no fsync in 20 s");
                std::thread::sleep(Duration::from_micros(200));
            }
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
        }
        // SAFETY: plain signal to the daemon this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        wait_exit(&mut writer, "the writer");
        let text = std::fs::read_to_string(&log).unwrap();
        let last = text.lines().last().unwrap_or("");
        if last.starts_with("B ") || text.lines().rev().take(2).any(|l| l.starts_with("B ")) {
            during_fsync += 1;
        }
        // Wait for the daemon to be gone before detaching.
        let until = Instant::now() + Duration::from_secs(30);
        while rightsfs::fs::pid_alive(pid)
            && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        {
            assert!(Instant::now() < until, "daemon {pid} survives SIGKILL");
            std::thread::sleep(Duration::from_millis(5));
        }
        guard.pid = None;
        // The dead daemon is a zombie of this process (a subreaper) until
        // reaped: it must not count as a running mount.
        let status = json(&user.ok(&["--json", "status"]));
        let alive: Vec<_> = status["mounts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["alive"] == true)
            .collect();
        assert!(
            alive.is_empty(),
            "round {round}: a killed daemon is reported alive: {status}"
        );
        user.ok(&["unmount", "--force", mnt.to_str().unwrap()]);
        reap(pid);
        let journals = std::fs::read_dir(src.join(".rightsfs/journal"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".journal"))
                    .count()
            })
            .unwrap_or(0);
        journals_seen += journals;

        guard.pid = Some(mount(&user, &src, &mnt));
        let allowed = allowed(&text);
        for name in FILES {
            let states = allowed
                .get(name)
                .unwrap_or_else(|| panic!("round {round}: no log for {name}"));
            let shown = mnt.join(name);
            let protected = src.join(format!("{name}.rights"));
            if !shown.exists() {
                assert!(
                    states[0] == "-" && !protected.exists(),
                    "round {round}: {name} vanished (log {log:?})"
                );
                continue;
            }
            let data = std::fs::read(&shown)
                .unwrap_or_else(|e| panic!("round {round}: {name} does not read through the mount: {e}"));
            let got = sha(&data);
            let ok = states.contains(&got) || (states[0] == "-" && data.is_empty());
            assert!(
                ok,
                "round {round}: {name} holds a state ({} bytes) that is neither its last fsync nor a later one \
                 (seed {seed}, log {log:?}):\n{text}",
                data.len()
            );
            let o = user.run(&["cat", protected.to_str().unwrap()]);
            assert!(
                o.status.success(),
                "round {round}: rights cat {name}.rights failed: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            assert_eq!(
                sha(&o.stdout),
                got,
                "round {round}: rights cat and the mount disagree on {name}"
            );
        }
        let status = json(&user.ok(&["--json", "status"]));
        let mounts = status["mounts"].as_array().expect("mounts");
        assert_eq!(mounts.len(), 1, "one mount expected: {status}");
        let recovered = mounts[0]["recovered"].as_array().expect("recovered").len();
        if journals > 0 {
            assert!(
                recovered > 0,
                "round {round}: a journal was left but no recovery is reported: {status}"
            );
        }
        recoveries += recovered;
        let errors = mount_log_errors(&user);
        assert!(
            errors.is_empty(),
            "round {round}: the mount logged errors:\n{}",
            errors.join("\n")
        );
    }
    eprintln!(
        "fs_crash: {ROUNDS} kills ({during_fsync} during fsync), {journals_seen} journals left, \
         {recoveries} recoveries reported, {:?}",
        started.elapsed()
    );
    assert!(
        recoveries > 0,
        "50 kills in the middle of writing never needed a recovery"
    );
    user.ok(&["unmount", mnt.to_str().unwrap()]);
    if let Some(pid) = guard.pid.take() {
        reap(pid);
    }
    for name in FILES {
        let protected = src.join(format!("{name}.rights"));
        if protected.exists() {
            let o = user.run(&["cat", protected.to_str().unwrap()]);
            assert!(o.status.success(), "{name}: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

/// The saver: writes a new version into a temporary file and renames it
/// over `doc.txt`, again and again, until the mount dies. Log lines:
/// `S sha` the start state, `R` once read, `B sha` just before a rename,
/// `D sha` after it returned.
const SAVER: &str = r#"
import os, sys, random, hashlib
mnt, log, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = random.Random(seed)
logf = open(log, 'a', buffering=1)
def h(b): return hashlib.sha256(b).hexdigest()
doc = os.path.join(mnt, 'doc.txt')
with open(doc, 'rb') as f:
    logf.write("S %s\n" % h(f.read()))
logf.write("R\n")
i = 0
while True:
    i += 1
    data = (b"version %d of %d\n" % (i, seed)) * rnd.randint(1, 20000)
    tmp = os.path.join(mnt, '.doc.txt.tmp')
    with open(tmp, 'wb') as f:
        f.write(data)
    logf.write("B %s\n" % h(data))
    os.replace(tmp, doc)
    logf.write("D %s\n" % h(data))
"#;

/// What `doc.txt` may hold after a kill during saves: the last completed
/// save (or the start), or a save that had begun.
fn saved_states(log: &str) -> Vec<String> {
    let mut states = Vec::new();
    for line in log.lines() {
        match line.split_once(' ') {
            Some(("S" | "D", sha)) => states = vec![sha.to_string()],
            Some(("B", sha)) => states.push(sha.to_string()),
            _ => {}
        }
    }
    states
}

#[test]
fn a_daemon_killed_during_saves_leaves_the_old_or_the_new_document() {
    let Bench {
        _server,
        user,
        src,
        mnt,
        work,
        script,
    } = bench("saves@example.com", "saver", SAVER);
    let mut rng = Rng(std::process::id() as u64 | 1);
    // SAFETY: plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut guard = Cleanup {
        mnt: mnt.clone(),
        pid: None,
    };
    guard.pid = Some(mount(&user, &src, &mnt));
    std::fs::write(mnt.join("doc.txt"), b"the first version\n").unwrap();
    let backing = src.join("doc.txt.rights");
    let id = || json(&user.ok(&["--json", "info", backing.to_str().unwrap()]))["content_id"].clone();
    let first = id();
    for round in 0..12 {
        let pid = guard.pid.expect("mounted");
        let log = work.path().join(format!("saves-{round}.log"));
        let mut saver = Command::new("python3")
            .arg(&script)
            .arg(&mnt)
            .arg(&log)
            .arg(rng.next().to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3");
        wait_for(&log, &mut saver, "R", 1);
        std::thread::sleep(Duration::from_millis(20 + rng.below(400)));
        // SAFETY: plain signal to the daemon this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        wait_exit(&mut saver, "the saver");
        guard.pid = None;
        user.ok(&["unmount", "--force", mnt.to_str().unwrap()]);
        reap(pid);
        guard.pid = Some(mount(&user, &src, &mnt));
        let text = std::fs::read_to_string(&log).unwrap();
        let data = std::fs::read(mnt.join("doc.txt")).unwrap_or_else(|e| {
            panic!(
                "round {round}: the document does not read: {e}\n{text}\n{:#?}",
                mount_log_errors(&user)
            )
        });
        assert!(
            saved_states(&text).contains(&sha(&data)),
            "round {round}: the document holds neither its old nor a new version\n{text}"
        );
        assert_eq!(id(), first, "round {round}: the document changed identity");
    }
    let errors = mount_log_errors(&user);
    assert!(errors.is_empty(), "{errors:#?}");
}
