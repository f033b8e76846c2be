//! Stress on one mount: 8 processes for about 20 s, each writing at random
//! offsets, appending, reading back, truncating, fsyncing, reopening and
//! renaming its own files against a model it keeps, while process 0 also
//! rewrites and appends checksummed records of one shared file that the
//! other seven keep reading (every record they read must be whole). The
//! test must finish (no deadlock); then every file equals its model, the
//! shared file equals the writer's last state, and after unmount every
//! `.rights` file decrypts to the same bytes.

mod fs_support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fs_support::Fixture;

const WORKERS: usize = 8;
const SECONDS: f64 = 20.0;

const WORKER: &str = r#"
import os, sys, random, hashlib, time, struct
mnt, out, idx, secs, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
rnd = random.Random(seed)
REC = 4096
SHARED = os.path.join(mnt, 'shared.dat')

def fail(msg):
    sys.stderr.write("worker %d: %s\n" % (idx, msg))
    sys.exit(1)

def record(gen, i):
    fill = hashlib.sha256(b'%d/%d' % (gen, i)).digest() * (REC // 32)
    body = (struct.pack('<QI', gen, i) + fill)[:REC - 32]
    return body + hashlib.sha256(body).digest()

def check_records(b, where, first=0):
    if len(b) % REC:
        fail("%s: shared file read of %d bytes is not whole records" % (where, len(b)))
    for i in range(len(b) // REC):
        r = b[i * REC:(i + 1) * REC]
        if hashlib.sha256(r[:-32]).digest() != r[-32:]:
            fail("%s: torn or corrupt record %d" % (where, i))
        gen, j = struct.unpack('<QI', r[:12])
        if j != first + i or r != record(gen, j):
            fail("%s: record %d holds record %d of generation %d" % (where, first + i, j, gen))

DIRECT = []
def direct(flags):
    # O_DIRECT: reads and writes go to the mount as they are, not through
    # the page cache (whose copies are not atomic for concurrent readers).
    try:
        fd = os.open(SHARED, flags | os.O_DIRECT)
        DIRECT.append(True)
        return fd
    except OSError:
        DIRECT.append(False)
        return os.open(SHARED, flags)

if idx < 0:
    fd = direct(os.O_RDWR | os.O_CREAT)
    for i in range(8):
        os.pwrite(fd, record(0, i), i * REC)
    os.fsync(fd)
    os.close(fd)
    sys.exit(0)

def pwrite_all(fd, b, off):
    done = 0
    while done < len(b):
        done += os.pwrite(fd, b[done:], off + done)

def pread_all(fd, n, off):
    parts = []
    while n > 0:
        b = os.pread(fd, n, off)
        if not b:
            break
        parts.append(b)
        n -= len(b)
        off += len(b)
    return b''.join(parts)

model = {}
fds = {}
counter = 0
def new_name():
    global counter
    counter += 1
    return "w%d_%d" % (idx, counter)
for _ in range(3):
    n = new_name()
    fds[n] = os.open(os.path.join(mnt, n), os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    model[n] = bytearray()

shared = direct(os.O_RDWR if idx == 0 else os.O_RDONLY)
gens = {}
if idx == 0:
    b = pread_all(shared, 1 << 20, 0)
    check_records(b, "start")
    for i in range(len(b) // REC):
        gens[i] = struct.unpack('<Q', b[i * REC:i * REC + 8])[0]
gen = 0
ops = {}
deadline = time.monotonic() + secs
while time.monotonic() < deadline:
    op = rnd.choice(['write', 'write', 'append', 'read', 'read', 'truncate', 'fsync', 'reopen', 'rename',
                     'wholeread', 'shared', 'shared', 'shared'])
    ops[op] = ops.get(op, 0) + 1
    n = rnd.choice(sorted(model))
    data = model[n]
    fd = fds.get(n)
    if fd is None and op not in ('rename', 'wholeread', 'shared'):
        fd = fds[n] = os.open(os.path.join(mnt, n), os.O_RDWR)
    if op == 'write':
        off = rnd.randint(0, len(data) + 6000)
        b = rnd.randbytes(rnd.choice([1, 17, 4096, rnd.randint(1, 50000)]))
        pwrite_all(fd, b, off)
        if off > len(data):
            data.extend(bytes(off - len(data)))
        data[off:off + len(b)] = b
    elif op == 'append':
        if len(data) < 400000:
            b = rnd.randbytes(rnd.randint(1, 30000))
            pwrite_all(fd, b, len(data))
            data.extend(b)
    elif op == 'read':
        off = rnd.randint(0, len(data) + 100)
        size = rnd.randint(1, 70000)
        got = pread_all(fd, size, off)
        if got != bytes(data[off:off + size]):
            fail("%s: read of %d at %d differs from the model" % (n, size, off))
    elif op == 'truncate':
        size = rnd.randint(0, len(data) + 10000) if len(data) < 400000 else rnd.randint(0, 100000)
        os.ftruncate(fd, size)
        if size < len(data):
            del data[size:]
        else:
            data.extend(bytes(size - len(data)))
    elif op == 'fsync':
        os.fsync(fd)
    elif op == 'reopen':
        os.close(fd)
        fds[n] = os.open(os.path.join(mnt, n), os.O_RDWR)
    elif op == 'rename':
        others = [m for m in model if m != n]
        if rnd.random() < 0.5 or not others:
            to = new_name()
        else:
            to = rnd.choice(others)
            if fds.get(to) is not None:
                os.close(fds.pop(to))
            del model[to]
        os.rename(os.path.join(mnt, n), os.path.join(mnt, to))
        model[to] = model.pop(n)
        if n in fds:
            fds[to] = fds.pop(n)
        if len(model) < 3:
            m = new_name()
            fds[m] = os.open(os.path.join(mnt, m), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
            model[m] = bytearray()
    elif op == 'wholeread':
        with open(os.path.join(mnt, n), 'rb') as f:
            if f.read() != bytes(data):
                fail("%s: whole read differs from the model" % n)
    elif op == 'shared':
        if idx == 0:
            gen += 1
            if rnd.random() < 0.2 and len(gens) < 32:
                i = len(gens)
            else:
                i = rnd.randrange(len(gens))
            pwrite_all(shared, record(gen, i), i * REC)
            gens[i] = gen
            if rnd.random() < 0.1:
                os.fsync(shared)
        else:
            check_records(pread_all(shared, 1 << 20, 0), "reader")
            i = rnd.randrange(8)
            check_records(pread_all(shared, REC, i * REC), "reader record", i)
for n, fd in fds.items():
    os.close(fd)
os.close(shared)
for n, data in model.items():
    with open(os.path.join(out, n), 'wb') as f:
        f.write(data)
if idx == 0:
    with open(os.path.join(out, 'shared.dat'), 'wb') as f:
        for i in range(len(gens)):
            f.write(record(gens[i], i))
sys.stderr.write("worker %d (O_DIRECT %s): %s\n" % (idx, DIRECT, sorted(ops.items())))
"#;

fn wait_all(children: &mut [Child], deadline: Instant) -> Vec<std::process::ExitStatus> {
    let mut done: Vec<Option<std::process::ExitStatus>> = vec![None; children.len()];
    while done.iter().any(Option::is_none) {
        for (c, d) in children.iter_mut().zip(done.iter_mut()) {
            if d.is_none() {
                *d = c.try_wait().unwrap();
            }
        }
        if Instant::now() > deadline && done.iter().any(Option::is_none) {
            // A deadlock in the mount: the served threads live in this
            // process, so unwinding would hang on them. Report and stop.
            eprintln!("fs_stress: workers still running long after their deadline: the mount deadlocked");
            for c in children.iter_mut() {
                let _ = c.kill();
            }
            std::process::abort();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done.into_iter().map(Option::unwrap).collect()
}

#[test]
fn eight_processes_mixed_operations_stay_consistent() {
    let mut fx = Fixture::new();
    let work = tempfile::tempdir().unwrap();
    let script = work.path().join("worker.py");
    std::fs::write(&script, WORKER).unwrap();
    let out = work.path().join("models");
    std::fs::create_dir_all(&out).unwrap();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("fs_stress seed {seed}");
    let run = |idx: i64| {
        Command::new("python3")
            .arg(&script)
            .arg(fx.mnt())
            .arg(&out)
            .arg(idx.to_string())
            .arg(SECONDS.to_string())
            .arg(seed.wrapping_add(idx as u64).to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("python3")
    };
    let st = wait_all(&mut [run(-1)], Instant::now() + Duration::from_secs(60));
    assert!(st[0].success(), "creating the shared file failed");

    let started = Instant::now();
    let mut children: Vec<Child> = (0..WORKERS as i64).map(run).collect();
    let status = wait_all(&mut children, started + Duration::from_secs(SECONDS as u64 + 120));
    for (i, s) in status.iter().enumerate() {
        assert!(
            s.success(),
            "worker {i} found an inconsistency or failed ({s}); see its stderr"
        );
    }

    // Every file in the mount equals its model, and nothing else is there.
    let mut models: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for e in std::fs::read_dir(&out).unwrap() {
        let e = e.unwrap();
        models.insert(e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap());
    }
    let shown: Vec<String> = std::fs::read_dir(fx.mnt())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut shown_sorted = shown.clone();
    shown_sorted.sort();
    assert_eq!(
        shown_sorted,
        models.keys().cloned().collect::<Vec<_>>(),
        "files in the mount"
    );
    for (name, model) in &models {
        let got = std::fs::read(fx.mnt().join(name)).unwrap();
        assert!(
            got == *model,
            "{name}: {} bytes in the mount, model has {}",
            got.len(),
            model.len()
        );
    }

    fx.unmount();
    let mut protected = 0;
    for e in std::fs::read_dir(fx.src()).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        let Some(plain) = name.strip_suffix(".rights") else {
            continue;
        };
        let model = models
            .get(plain)
            .unwrap_or_else(|| panic!("{name} in the source has no model"));
        assert!(fx.decrypt(&e.path()) == *model, "{name} does not decrypt to its model");
        protected += 1;
    }
    assert_eq!(protected, models.len());
}
