//! End to end: where the real `rights` binary keeps this device's keys.
//! By default in the desktop keyring, here a real GNOME Keyring on a
//! private session bus, seen from outside with `secret-tool`: the keys
//! are there and nowhere else (not in the kernel keyring, not in a file),
//! processes in other kernel sessions (commands, the mount daemon) use
//! them, they outlive a restart of the keyring, and logging out removes
//! them. Where no desktop keyring answers, a sign-in falls back to the
//! sealed file and says so.

mod cli_support;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;

use cli_support::desktop_keyring::{DesktopKeyring, SessionBus};
use cli_support::mount::Mount;
use cli_support::{Server, User};

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Someone whose `rights` finds the desktop keyring `kr`.
fn desktop_user(email: &str, kr: &DesktopKeyring) -> User {
    User::new(email, false).with_env("DBUS_SESSION_BUS_ADDRESS", &kr.address())
}

/// `rights ARGS` in a kernel session keyring of its own, as in another
/// login session: nothing an earlier command put in the kernel keyring is
/// there.
fn in_new_session(u: &User, args: &[&str]) -> String {
    let mut c = u.command();
    // SAFETY: one raw system call between fork and exec.
    unsafe {
        c.pre_exec(|| {
            const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
            if libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_JOIN_SESSION_KEYRING,
                std::ptr::null::<libc::c_char>(),
            ) < 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let o = c.args(args).output().unwrap();
    assert!(o.status.success(), "rights {args:?} failed: {}", stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The `username` attributes of `u`'s items in the keyring, found by
/// their label (which names `u`'s configuration folder).
fn items_of(kr: &DesktopKeyring, u: &User) -> Vec<String> {
    let o = kr.secret_tool(&["search", "--all", "service", "rightsfs"]);
    // secret-tool prints each item's label (and secret) on stdout and its
    // attributes on stderr, items in the same order on both.
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let labels: Vec<&str> = out.lines().filter_map(|l| l.strip_prefix("label = ")).collect();
    let names: Vec<&str> = err
        .lines()
        .filter_map(|l| l.strip_prefix("attribute.username = "))
        .collect();
    assert_eq!(labels.len(), names.len(), "{out}\n{err}");
    let owner = format!("({})", u.paths().config_dir.display());
    let mut mine: Vec<String> = labels
        .iter()
        .zip(names)
        .filter(|(label, _)| label.ends_with(&owner))
        .map(|(_, name)| name.to_string())
        .collect();
    mine.sort();
    mine
}

/// The secret of the item whose `username` is `user`, read from outside.
fn secret(kr: &DesktopKeyring, user: &str) -> Vec<u8> {
    let o = kr.secret_tool(&["lookup", "service", "rightsfs", "username", user]);
    assert!(o.status.success() && !o.stdout.is_empty(), "{}", stderr(&o));
    o.stdout
}

/// Every regular file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            found.extend(files_containing(&p, needle));
        } else if m.is_file() && std::fs::read(&p).unwrap().windows(needle.len()).any(|w| w == needle) {
            found.push(p.display().to_string());
        }
    }
    found
}

fn config_toml(u: &User) -> String {
    std::fs::read_to_string(u.paths().config_dir.join("config.toml")).unwrap()
}

#[test]
fn the_desktop_keyring_keeps_the_keys_across_sessions_and_restarts() {
    let server = Server::start();
    let mut kr = DesktopKeyring::start();
    let alice = desktop_user("alice@example.com", &kr);
    let bob = desktop_user("bob@example.com", &kr);
    let said = stderr(&alice.signup(&server));
    assert!(!said.contains("warning"), "{said}");

    // The keys are in the desktop keyring, under names of alice's own.
    let names = items_of(&kr, &alice);
    let scope = names[0].split(':').next().unwrap().to_string();
    let expected: Vec<String> = ["access-token", "device-key", "refresh-token"]
        .map(|n| format!("{scope}:{n}"))
        .to_vec();
    assert_eq!(names, expected);
    let der = secret(&kr, &format!("{scope}:device-key"));
    rightsfs::crypto::DeviceKeyPair::from_pkcs8_der(&der).expect("the item holds the device's private key");
    let refresh = secret(&kr, &format!("{scope}:refresh-token"));
    assert!(
        config_toml(&alice).contains("keystore = \"keyring\""),
        "{}",
        config_toml(&alice)
    );

    // And nowhere else: not in the kernel keyring, not in any file of
    // alice's or of the keyring daemon's (whose keyring file is encrypted).
    assert!(!alice.paths().credential_file().exists());
    let kernel = std::fs::read_to_string("/proc/keys").unwrap();
    assert!(
        !kernel.contains(&scope),
        "a kernel key holds alice's secrets:\n{kernel}"
    );
    let mid = der.len() / 2;
    for needle in [&refresh[..], &der[mid..mid + 64]] {
        for dir in [alice.home.path(), kr.dir.path()] {
            assert_eq!(
                files_containing(dir, needle),
                Vec::<String>::new(),
                "a secret in plain text"
            );
        }
    }
    assert!(alice.ok(&["whoami"]).contains("desktop keyring (Secret Service)"));

    // Other processes, each in a kernel session of its own, use the keys:
    // protecting signs with the device key, reading needs the session.
    bob.signup(&server);
    alice.write("plan.txt", b"the plan\n");
    in_new_session(&alice, &["protect", "plan.txt", "--to", "bob@example.com:view"]);
    assert_eq!(in_new_session(&alice, &["cat", "plan.txt.rights"]), "the plan\n");
    alice.give("plan.txt.rights", &bob);
    assert_eq!(in_new_session(&bob, &["cat", "plan.txt.rights"]), "the plan\n");
    assert_eq!(items_of(&kr, &bob).len(), 3);

    // So does the mount daemon (a process and session of its own): bob's
    // file opens through his mount, and a new file there is protected
    // and signed with his device key.
    {
        let m = Mount::new(&bob, &[]);
        std::fs::copy(bob.docs().join("plan.txt.rights"), m.src.join("plan.txt.rights")).unwrap();
        assert_eq!(std::fs::read(m.mnt.join("plan.txt")).unwrap(), b"the plan\n");
        std::fs::write(m.mnt.join("reply.txt"), b"agreed\n").unwrap();
    }
    let reply = bob.home.path().join("protected/reply.txt.rights");
    assert_eq!(in_new_session(&bob, &["cat", reply.to_str().unwrap()]), "agreed\n");

    // Outside the session that holds the keyring, commands say where the
    // keys are and what to do; logging out there changes nothing.
    kr.stop();
    let err = alice.fails(&["cat", "plan.txt.rights"]);
    assert!(
        err.contains("desktop keyring (Secret Service)") && err.contains("--keystore file"),
        "{err}"
    );
    assert_eq!(json(&alice.ok(&["status", "--json"]))["session"], "keys_unreachable");
    let err = alice.fails(&["logout"]);
    assert!(err.contains("desktop keyring"), "{err}");
    assert!(config_toml(&alice).contains("alice@example.com"));

    // After a restart (a reboot and a new login) the keys are still there.
    kr.restart();
    assert_eq!(items_of(&kr, &alice), expected);
    assert_eq!(in_new_session(&alice, &["cat", "plan.txt.rights"]), "the plan\n");

    // Logging out removes alice's keys, and only hers.
    alice.ok(&["logout"]);
    assert_eq!(items_of(&kr, &alice), Vec::<String>::new());
    assert_eq!(items_of(&kr, &bob).len(), 3);
    assert_eq!(in_new_session(&bob, &["cat", "plan.txt.rights"]), "the plan\n");
}

/// Someone whose `rights` finds no desktop keyring: `bus` is the session
/// bus address, `runtime` an empty XDG_RUNTIME_DIR (no `bus` socket there).
fn headless_user(email: &str, bus: &str, runtime: &Path) -> User {
    User::new(email, false)
        .with_env("DBUS_SESSION_BUS_ADDRESS", bus)
        .with_env("XDG_RUNTIME_DIR", runtime.to_str().unwrap())
        .with_env("RIGHTS_PASSPHRASE", &format!("passphrase of {email}"))
}

#[test]
fn without_a_desktop_keyring_a_signin_falls_back_to_the_sealed_file() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("run");
    std::fs::create_dir_all(&runtime).unwrap();
    let no_bus = format!("unix:path={}", dir.path().join("no-bus").display());
    let bus = SessionBus::start(&dir.path().join("bus"));

    // No session bus at all, or one with no keyring daemon on it.
    let carol = headless_user("carol@example.com", &no_bus, &runtime);
    let dave = headless_user("dave@example.com", &bus.address, &runtime);
    for u in [&carol, &dave] {
        let said = stderr(&u.signup(&server));
        let file = u.paths().credential_file();
        for words in [
            "no desktop keyring",
            "passphrase-sealed file",
            &file.display().to_string(),
            "gnome-keyring-daemon",
            "--keystore file",
        ] {
            assert!(said.contains(words), "{words:?} missing: {said}");
        }
        assert!(file.exists());
        assert!(config_toml(u).contains("keystore = \"file\""), "{}", config_toml(u));
        // Later commands use the file, without warning again.
        u.write("note.txt", b"a note\n");
        let o = u.run(&["protect", "note.txt"]);
        assert!(o.status.success() && !stderr(&o).contains("keyring"), "{}", stderr(&o));
        assert_eq!(u.ok(&["cat", "note.txt.rights"]), "a note\n");
        let st = json(&u.ok(&["status", "--json"]));
        assert_eq!(
            (st["session"].as_str(), st["keystore"].as_str()),
            (Some("active"), Some("file"))
        );
    }

    // Asked for by name, the desktop keyring is not replaced: the sign-in
    // fails before a code is mailed, saying what to do.
    let erin = headless_user("erin@example.com", &no_bus, &runtime);
    let mailed = server.smtp.count();
    let err = erin.fails(&[
        "signup",
        "erin@example.com",
        "--server",
        &server.url,
        "--keystore",
        "keyring",
    ]);
    assert!(
        err.contains("desktop keyring") && err.contains("--keystore file") && err.contains("gnome-keyring-daemon"),
        "{err}"
    );
    assert_eq!(server.smtp.count(), mailed, "no code was mailed");
    assert!(!erin.paths().credential_file().exists());
}
