//! Editors' saves keep a document's identity, end to end: one real server,
//! Alice (the owner), Bob (`view`) and Carol (`view,edit`), each with their
//! own `rights mount --daemon`. Every saving program on the machine saves
//! the shared document through its user's mount (LibreOffice headless,
//! through UNO, an OpenDocument text); afterwards the document
//! has the same content id, owner and grants, and everyone who could read
//! it reads the new content. Bob's attempts are refused and leave it as it
//! was.

mod cli_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cli_support::mount::Mount;
use cli_support::{Server, User};

/// One way of saving `doc.txt` in the current folder with `$LINE` added
/// as its last line, as the program does it.
struct Program {
    name: &'static str,
    /// Needs this binary.
    needs: &'static str,
    script: &'static str,
}

const GIT: &str = "git -c user.name=t -c user.email=t@example.com -c init.defaultBranch=main";

fn programs() -> Vec<Program> {
    vec![
        Program {
            name: "sed -i",
            needs: "sed",
            script: r#"sed -i "\$a $LINE" doc.txt"#,
        },
        Program {
            name: "perl -i",
            needs: "perl",
            script: r#"perl -i -pe '$_ .= "$ENV{LINE}\n" if eof' doc.txt"#,
        },
        Program {
            name: "python tempfile + os.replace",
            needs: "python3",
            script: r#"python3 -c '
import os, tempfile
data = open("doc.txt", "rb").read() + os.environ["LINE"].encode() + b"\n"
fd, tmp = tempfile.mkstemp(dir=".")
os.write(fd, data)
os.close(fd)
os.replace(tmp, "doc.txt")'"#,
        },
        Program {
            name: "cp to a temporary, then mv",
            needs: "mv",
            script: r#"cp doc.txt .doc.tmp && printf '%s\n' "$LINE" >> .doc.tmp && mv .doc.tmp doc.txt"#,
        },
        Program {
            name: "rsync",
            needs: "rsync",
            script: r#"cat doc.txt > "$OUT/doc.txt" && printf '%s\n' "$LINE" >> "$OUT/doc.txt" && rsync "$OUT/doc.txt" doc.txt"#,
        },
        Program {
            name: "vim backupcopy=no",
            needs: "vim",
            script: r#"vim -es -N -u NONE -i NONE -c 'set backupcopy=no writebackup nobackup noswapfile' -c 'call append(line("$"), $LINE)' -c 'w!' -c 'q!' doc.txt"#,
        },
        Program {
            name: "vim backupcopy=yes",
            needs: "vim",
            script: r#"vim -es -N -u NONE -i NONE -c 'set backupcopy=yes writebackup nobackup noswapfile' -c 'call append(line("$"), $LINE)' -c 'w!' -c 'q!' doc.txt"#,
        },
        Program {
            name: "gio save",
            needs: "gio",
            script: r#"{ cat doc.txt; printf '%s\n' "$LINE"; } > "$OUT/gio.txt" && gio save doc.txt < "$OUT/gio.txt""#,
        },
        Program {
            name: "emacs (backup by rename)",
            needs: "emacs",
            script: r#"emacs --batch -Q doc.txt --eval '(progn (goto-char (point-max)) (insert (getenv "LINE") "\n") (save-buffer))'"#,
        },
    ]
}

/// `git checkout` of a file removes it and creates it again.
const GIT_CHECKOUT: &str = r#"$GIT init -q . && $GIT add doc.txt && $GIT commit -qm before && printf '%s\n' "$LINE" >> doc.txt && $GIT commit -qam after && $GIT checkout -q HEAD~1 -- doc.txt && $GIT checkout -q main -- doc.txt"#;

fn have(binary: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {binary}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs a save in `dir` (a mount) as `user`.
fn save(user: &User, dir: &Path, script: &str, line: &str) -> Output {
    let out = user.home.path().join("outside");
    std::fs::create_dir_all(&out).unwrap();
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("HOME", user.home.path())
        .env("LINE", line)
        .env("OUT", &out)
        .env("GIT", GIT)
        .output()
        .unwrap()
}

/// What `rights info` says makes a document itself.
#[derive(Debug, PartialEq)]
struct Identity {
    content_id: String,
    owner: String,
    grants: serde_json::Value,
}

fn identity(user: &User, backing: &Path) -> Identity {
    let v: serde_json::Value = serde_json::from_str(&user.ok(&["info", backing.to_str().unwrap(), "--json"])).unwrap();
    Identity {
        content_id: v["content_id"].as_str().unwrap().to_string(),
        owner: v["owner"].as_str().unwrap().to_string(),
        grants: v["policy_in_file"]["grants"].clone(),
    }
}

/// Three people and the document Alice shares with Bob (view) and Carol
/// (view, edit), delivered into each one's mounted folder.
struct Team {
    _server: Server,
    alice: User,
    bob: User,
    carol: User,
}

const FIRST: &str = "the shared document\n";

fn team() -> Team {
    let server = Server::start();
    let [alice, bob, carol] = cli_support::three_people(&server);
    alice.write("doc.txt", FIRST.as_bytes());
    alice.ok(&[
        "protect",
        "doc.txt",
        "--to",
        "bob@example.com:view",
        "--to",
        "carol@example.com:view,edit",
    ]);
    Team {
        _server: server,
        alice,
        bob,
        carol,
    }
}

/// Puts a copy of `backing` into `m`'s source folder as `NAME.txt.rights`
/// (as mail or a sync folder would) and returns the name it shows as.
fn deliver(backing: &Path, m: &Mount, name: &str) -> PathBuf {
    deliver_as(backing, m, &format!("{name}.txt"))
}

/// Puts a copy of `backing` into `m`'s source folder to show as `shown`.
fn deliver_as(backing: &Path, m: &Mount, shown: &str) -> PathBuf {
    std::fs::copy(backing, m.src.join(format!("{shown}.rights"))).unwrap();
    m.mnt.join(shown)
}

/// Saves with every program as `saver` through `mine`; after each, the
/// document keeps its identity and `others` read the new content.
fn saves_keep_identity(saver: &User, mine: &Mount, others: &[&Mount]) {
    let backing = mine.src.join("doc.txt.rights");
    let before = identity(saver, &backing);
    assert_eq!(before.owner, "alice@example.com");
    let mut expected = std::fs::read_to_string(mine.mnt.join("doc.txt")).unwrap();
    let mut runs: Vec<(&str, &str)> = programs()
        .iter()
        .filter(|p| {
            let ok = have(p.needs);
            if !ok {
                eprintln!("skipping {}: {} is not installed", p.name, p.needs);
            }
            ok
        })
        .map(|p| (p.name, p.script))
        .collect();
    if have("git") {
        runs.push(("git checkout", GIT_CHECKOUT));
    }
    for (i, (name, script)) in runs.into_iter().enumerate() {
        let line = format!("saved by {} with {name}", saver.email);
        let o = save(saver, &mine.mnt, script, &line);
        assert!(o.status.success(), "{name} failed: {o:?}\n{}", mine.log());
        expected.push_str(&line);
        expected.push('\n');
        assert_eq!(
            std::fs::read_to_string(mine.mnt.join("doc.txt")).unwrap(),
            expected,
            "{name}: the saver reads the new content"
        );
        assert_eq!(
            identity(saver, &backing),
            before,
            "{name}: the document kept its identity\n{}",
            mine.log()
        );
        for m in others {
            let shown = deliver(&backing, m, &format!("after-{i}"));
            assert_eq!(
                std::fs::read_to_string(&shown).unwrap(),
                expected,
                "{name}: {} reads the new content",
                m.user.email
            );
        }
    }
}

/// Each one's own daemon mount.
fn mounts<'a>([a, b, c]: [&'a User; 3]) -> (Mount<'a>, Mount<'a>, Mount<'a>) {
    (Mount::new(a, &[]), Mount::new(b, &[]), Mount::new(c, &[]))
}

#[test]
fn the_owners_saves_keep_the_document_shared() {
    let t = team();
    let (am, bm, cm) = mounts([&t.alice, &t.bob, &t.carol]);
    deliver(&t.alice.docs().join("doc.txt.rights"), &am, "doc");
    saves_keep_identity(&t.alice, &am, &[&bm, &cm]);
}

#[test]
fn an_editors_saves_keep_the_owner_and_the_sharing() {
    let t = team();
    let (am, bm, cm) = mounts([&t.alice, &t.bob, &t.carol]);
    deliver(&t.alice.docs().join("doc.txt.rights"), &cm, "doc");
    saves_keep_identity(&t.carol, &cm, &[&am, &bm]);
    // The owner still owns it: her own mount opens it with her own key.
    let log = am.log();
    assert!(!log.contains("access refused"), "{log}");
}

#[test]
fn a_viewers_saves_are_refused_and_change_nothing() {
    let t = team();
    let bm = Mount::new(&t.bob, &[]);
    let shown = deliver(&t.alice.docs().join("doc.txt.rights"), &bm, "doc");
    let backing = bm.src.join("doc.txt.rights");
    let bytes = std::fs::read(&backing).unwrap();
    let before = identity(&t.bob, &backing);
    for p in programs().iter().filter(|p| have(p.needs)) {
        let o = save(&t.bob, &bm.mnt, p.script, "vandalised");
        assert!(!o.status.success(), "{}: a view-only save succeeded", p.name);
        assert_eq!(
            std::fs::read(&backing).unwrap_or_else(|e| panic!(
                "{}: {e}: {:?}\n{}",
                p.name,
                std::fs::read_dir(&bm.src).map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>()),
                bm.log()
            )),
            bytes,
            "{}: the document changed\n{}",
            p.name,
            bm.log()
        );
        assert_eq!(std::fs::read_to_string(&shown).unwrap(), FIRST, "{}", p.name);
        assert_eq!(identity(&t.bob, &backing), before);
    }
    // A rename over the document, done by hand: EACCES, and both stay.
    std::fs::write(bm.mnt.join("mine.txt"), b"other content").unwrap();
    let e = std::fs::rename(bm.mnt.join("mine.txt"), &shown).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    assert_eq!(std::fs::read(&backing).unwrap(), bytes);
    assert_eq!(std::fs::read(bm.mnt.join("mine.txt")).unwrap(), b"other content");
    assert!(bm.log().contains("you may only view this document"));
}

/// Descriptors still open on a file renamed over a document keep reading
/// and writing that file, now the document: nothing written through them
/// after the save is lost, and a descriptor opened on the name afterwards
/// shares what they wrote.
#[test]
fn descriptors_open_on_the_renamed_file_follow_it_into_the_document() {
    use std::io::{Read, Seek, Write};
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let am = Mount::new(&alice, &[]);
    let doc = am.mnt.join("doc.txt");
    std::fs::write(&doc, b"first\n").unwrap();
    let backing = am.src.join("doc.txt.rights");
    let before = identity(&alice, &backing);

    let tmp = am.mnt.join(".doc.tmp");
    let mut w = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&tmp)
        .unwrap();
    w.write_all(b"second\n").unwrap();
    let mut r = std::fs::File::open(&tmp).unwrap();
    std::fs::rename(&tmp, &doc).unwrap();
    w.write_all(b"after the save\n").unwrap();
    w.sync_all().unwrap();
    let mut got = String::new();
    r.read_to_string(&mut got).unwrap();
    assert_eq!(got, "second\nafter the save\n", "{}", am.log());
    assert_eq!(identity(&alice, &backing), before, "{}", am.log());

    // Past the kernel's name cache (1 s), a new open of the name looks it
    // up again, and must share the view the old descriptors write into.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut fresh = std::fs::OpenOptions::new().read(true).write(true).open(&doc).unwrap();
    w.write_all(b"through the old descriptor\n").unwrap();
    fresh.seek(std::io::SeekFrom::End(0)).unwrap();
    fresh.write_all(b"through the new one\n").unwrap();
    drop(w);
    drop(r);
    drop(fresh);
    assert_eq!(
        std::fs::read_to_string(&doc).unwrap(),
        "second\nafter the save\nthrough the old descriptor\nthrough the new one\n",
        "{}",
        am.log()
    );
    assert_eq!(identity(&alice, &backing), before);
    let names: Vec<_> = std::fs::read_dir(&am.mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("doc.txt")]);
}

/// Reads `shown` through a mount, once the server knows the file: its
/// creator's daemon registers new files in the background, after a quiet
/// second.
fn read_once_registered(shown: &Path) -> std::io::Result<Vec<u8>> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match std::fs::read(shown) {
            Err(e) if e.raw_os_error() == Some(libc::EACCES) && std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            r => return r,
        }
    }
}

/// The people named in a document's grants, as `rights info` shows them.
fn granted(user: &User, backing: &Path) -> String {
    let v: serde_json::Value = serde_json::from_str(&user.ok(&["info", backing.to_str().unwrap(), "--json"])).unwrap();
    assert_eq!(v["owner"], user.email.as_str(), "the creator owns a new file");
    v["policy_in_file"]["grants"].to_string()
}

/// A recipient's new file in the owner's shared folder is the recipient's,
/// shared as the owner's folder policy says and with the owner, so the
/// owner and the folder's other recipients read it. A policy file whose
/// signer has no document there that vouches for their key changes
/// nothing.
#[test]
fn a_recipients_new_file_in_the_owners_folder_stays_shared_with_the_folder() {
    let server = Server::start();
    let [alice, bob, carol] = cli_support::three_people(&server);
    let eve = User::new("eve@example.com", true);
    eve.signup(&server);
    let docs = alice.docs();
    alice.ok(&[
        "policy",
        "set",
        docs.to_str().unwrap(),
        "--to",
        "bob@example.com:view",
        "--to",
        "carol@example.com:view,edit",
    ]);
    alice.write("plan.txt", b"the plan\n");
    alice.ok(&["protect", "plan.txt", "--to", "carol@example.com:view,edit"]);
    // Eve plants a policy of her own, signed, but with nothing of hers there.
    eve.ok(&[
        "policy",
        "set",
        eve.docs().to_str().unwrap(),
        "--to",
        "eve@example.com:view",
    ]);

    let (am, bm, cm) = mounts([&alice, &bob, &carol]);
    // Alice's folder, synced into Carol's source folder.
    let shared = cm.src.join("shared");
    std::fs::create_dir(&shared).unwrap();
    for f in [".rights-policy", "plan.txt.rights"] {
        std::fs::copy(docs.join(f), shared.join(f)).unwrap();
    }
    let planted = cm.src.join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::copy(eve.docs().join(".rights-policy"), planted.join(".rights-policy")).unwrap();

    std::fs::write(cm.mnt.join("shared/notes.txt"), b"carol's notes\n").unwrap();
    std::fs::write(cm.mnt.join("planted/notes.txt"), b"not for eve\n").unwrap();
    carol.ok(&["sync"]);

    let theirs = shared.join("notes.txt.rights");
    let grants = granted(&carol, &theirs);
    assert!(grants.contains("alice@example.com"), "{grants}\n{}", cm.log());
    assert!(grants.contains("bob@example.com"), "{grants}");
    assert!(!grants.contains("eve@example.com"), "{grants}");
    for m in [&am, &bm] {
        let shown = deliver(&theirs, m, "carols-notes");
        assert_eq!(
            read_once_registered(&shown).unwrap_or_else(|e| panic!("{}: {e}\n{}", m.user.email, m.log())),
            b"carol's notes\n",
            "{} reads it\n{}",
            m.user.email,
            m.log()
        );
    }
    let grants = granted(&carol, &planted.join("notes.txt.rights"));
    assert!(
        !grants.contains("eve@example.com"),
        "a planted policy counted: {grants}"
    );
    assert!(cm.log().contains("ignoring a folder policy file"), "{}", cm.log());
}

/// The UNO script that opens, changes and stores a document in a headless
/// LibreOffice (tests/fs_saves/libreoffice_save.py).
const LIBREOFFICE_SAVE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fs_saves/libreoffice_save.py");

/// Debian's python with python3-uno (another python may come first on
/// PATH and has no `uno`).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// Whether LibreOffice and its Python bridge are installed; under CI,
/// where scripts/install-deps.sh installs them, they must be.
fn have_libreoffice() -> bool {
    let ok = have("soffice")
        && Command::new(SYSTEM_PYTHON)
            .args(["-c", "import uno"])
            .output()
            .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but LibreOffice or python3-uno is missing: run scripts/install-deps.sh"
        );
        eprintln!("SKIPPED: needs soffice and python3-uno (apt-get install libreoffice-writer-nogui python3-uno)");
    }
    ok
}

/// `user` opens `name` in `dir` (a mount) with a headless LibreOffice of
/// their own, adds `line` as a paragraph and stores it: `save` is File >
/// Save (`store()`), `save-as` stores onto the same file. LibreOffice
/// keeps copies of the document outside the mount while it works (its
/// temporary folder, its profile's backups); once it has closed the
/// document none may be left.
fn libreoffice(user: &User, dir: &Path, name: &str, line: &str, mode: &str) -> Output {
    let profile = user.home.path().join("libreoffice-profile");
    let tmp = user.home.path().join("libreoffice-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let o = Command::new(SYSTEM_PYTHON)
        .arg(LIBREOFFICE_SAVE)
        .arg(&profile)
        .args([name, line, mode])
        .current_dir(dir)
        .env("HOME", user.home.path())
        .env("TMPDIR", &tmp)
        .output()
        .unwrap();
    for left in [tmp, profile.join("user/backup")] {
        let files: Vec<_> = walk(&left);
        assert!(files.is_empty(), "LibreOffice left copies outside the mount: {files:?}");
    }
    o
}

/// The files (not folders) under `dir`, if it exists.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// The text of an OpenDocument file's body (its `content.xml`).
fn odt_text(bytes: &[u8], scratch: &Path) -> String {
    let file = scratch.join("read.odt");
    std::fs::write(&file, bytes).unwrap();
    let o = Command::new(SYSTEM_PYTHON)
        .args([
            "-c",
            "import sys, zipfile; sys.stdout.write(zipfile.ZipFile(sys.argv[1]).read('content.xml').decode())",
        ])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert!(o.status.success(), "not an OpenDocument file: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// What LibreOffice leaves in a folder it saved in: nothing once it has
/// closed the document (its lock file `.~lock.NAME#` and temporary
/// `lu*.tmp` are gone).
fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".~lock.") || (n.starts_with("lu") && n.ends_with(".tmp")))
        .collect()
}

/// LibreOffice's own save (File > Save through UNO, headless) of an
/// OpenDocument text in the mount, by the owner and by an `edit`
/// grantee: the document keeps its content id, owner and grants, and
/// everyone who could read it reads the new text. A `view` grantee's
/// Save and Save-over are refused and change nothing.
#[test]
fn libreoffice_saves_keep_the_document_shared() {
    if !have_libreoffice() {
        return;
    }
    let server = Server::start();
    let [alice, bob, carol] = cli_support::three_people(&server);
    // A real LibreOffice document, made by LibreOffice from text.
    let made = alice.home.path().join("made");
    std::fs::create_dir_all(&made).unwrap();
    std::fs::write(made.join("report.txt"), FIRST).unwrap();
    let o = Command::new("soffice")
        .arg("--headless")
        .arg(format!(
            "-env:UserInstallation=file://{}",
            alice.home.path().join("libreoffice-profile").display()
        ))
        .args(["--convert-to", "odt", "--outdir"])
        .arg(alice.docs())
        .arg(made.join("report.txt"))
        .env("HOME", alice.home.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    alice.ok(&[
        "protect",
        "report.odt",
        "--to",
        "bob@example.com:view",
        "--to",
        "carol@example.com:view,edit",
    ]);
    let protected = alice.docs().join("report.odt.rights");
    let (am, bm, cm) = mounts([&alice, &bob, &carol]);
    let scratch = tempfile::tempdir().unwrap();

    for (saver, mine, others) in [(&alice, &am, [&bm, &cm]), (&carol, &cm, [&am, &bm])] {
        deliver_as(&protected, mine, "report.odt");
        let backing = mine.src.join("report.odt.rights");
        let before = identity(saver, &backing);
        assert_eq!(before.owner, "alice@example.com");
        let line = format!("saved by {} with LibreOffice", saver.email);
        let o = libreoffice(saver, &mine.mnt, "report.odt", &line, "save");
        assert!(o.status.success(), "{o:?}\n{}", mine.log());
        assert_eq!(
            identity(saver, &backing),
            before,
            "the document kept its identity\n{}",
            mine.log()
        );
        assert_eq!(leftovers(&mine.mnt), Vec::<String>::new());
        let saved = std::fs::read(mine.mnt.join("report.odt")).unwrap();
        let text = odt_text(&saved, scratch.path());
        assert!(text.contains(&line) && text.contains("the shared document"), "{text}");
        for m in others {
            let shown = deliver_as(&backing, m, &format!("from-{}.odt", saver.email));
            let theirs = std::fs::read(shown).unwrap_or_else(|e| panic!("{}: {e}\n{}", m.user.email, m.log()));
            assert_eq!(theirs, saved, "{} reads the new version", m.user.email);
        }
    }

    // Bob may only view: the mount refuses LibreOffice's write open
    // (EACCES) and answers access(W_OK) with EACCES, so LibreOffice opens
    // the document read-only; its Save, and storing onto the file anyway,
    // fail and change nothing.
    let shown = deliver_as(&protected, &bm, "report.odt");
    let backing = bm.src.join("report.odt.rights");
    let bytes = std::fs::read(&backing).unwrap();
    let before = identity(&bob, &backing);
    for mode in ["save", "save-as"] {
        let o = libreoffice(&bob, &bm.mnt, "report.odt", "vandalised", mode);
        // Exit 1: it loaded the document and failed to store it.
        assert_eq!(o.status.code(), Some(1), "{mode}: {o:?}\n{}", bm.log());
        assert_eq!(
            std::fs::read(&backing).unwrap(),
            bytes,
            "{mode}: the document changed\n{}",
            bm.log()
        );
        assert_eq!(identity(&bob, &backing), before);
        assert_eq!(leftovers(&bm.mnt), Vec::<String>::new(), "{mode}");
    }
    let text = odt_text(&std::fs::read(&shown).unwrap(), scratch.path());
    assert!(
        !text.contains("vandalised") && text.contains("the shared document"),
        "{text}"
    );
    let log = bm.log();
    assert!(
        log.contains("refused a write open: you may only view this file"),
        "{log}"
    );
}

/// What the key of the protected file at `backing` has sealed so far
/// (docs/FORMAT.md section 9), read with its owner's key.
fn seals(owner: &User, backing: &Path) -> u64 {
    let f = std::fs::File::open(backing).unwrap();
    let header = rightsfs::format::read_header(&f).unwrap();
    let key = owner.licensing().key_for(&header).unwrap().key;
    rightsfs::format::ProtectedFile::seals_used(&f, &key).unwrap()
}

/// A save that makes a new file of the document (a rename over it, or a
/// file created under the name it left) goes on counting its key's
/// seals: saving again and again never brings the count back down, so the
/// bound on seals under one key holds whichever way a program saves.
#[test]
fn saves_keep_counting_the_documents_seals() {
    let server = Server::start();
    let alice = User::new("alice@example.com", true);
    alice.signup(&server);
    let am = Mount::new(&alice, &[]);
    let doc = am.mnt.join("doc.txt");
    let backing = am.src.join("doc.txt.rights");
    // 64 blocks written in place, then rewritten: well over a hundred seals.
    std::fs::write(&doc, vec![b'a'; 64 * 4096]).unwrap();
    std::fs::write(&doc, vec![b'b'; 64 * 4096]).unwrap();
    let mut before = seals(&alice, &backing);
    assert!(before > 100, "{before}");
    let renamed = "printf 'renamed over\\n' > .doc.tmp && mv .doc.tmp doc.txt";
    let continued = "mv doc.txt doc.txt~ && printf 'continued\\n' > doc.txt && rm doc.txt~";
    for (how, script) in [("rename over", renamed), ("continued name", continued)] {
        let o = save(&alice, &am.mnt, script, "");
        assert!(o.status.success(), "{how}: {o:?}\n{}", am.log());
        let after = seals(&alice, &backing);
        assert!(
            after > before,
            "{how}: the new version counts {after} seals, the old one {before}"
        );
        before = after;
    }
}
