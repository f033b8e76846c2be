//! The mount daemon keeps its secrets to itself: started by the real
//! `rights mount --daemon` with the credential file's passphrase in its
//! environment, it must not be readable through /proc by another process
//! of the same user (non-dumpable), must not carry the passphrase in its
//! environment, and must not write it to its log.

mod cli_support;

use std::process::{Command, Stdio};

use cli_support::daemon::{Daemon, mount_log};
use cli_support::{Server, User};

/// `command` run without `CAP_SYS_PTRACE`. Every process of the test runs
/// so, the daemon too: the kernel then lets one read another's memory
/// exactly when the other is dumpable (the test may run as root, whose
/// full capabilities would otherwise decide).
fn without_ptrace(command: &Command) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--bounding-set=-sys_ptrace", "--inh-caps=-sys_ptrace"])
        .arg(command.get_program())
        .args(command.get_args())
        .stdin(Stdio::null());
    for (k, v) in command.get_envs() {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    if let Some(d) = command.get_current_dir() {
        c.current_dir(d);
    }
    c
}

/// Opens /proc/PID/mem as another process of the same user would; the
/// error message (`Permission denied` when the kernel refuses).
fn peek(pid: u32) -> String {
    let mut cat = Command::new("cat");
    cat.arg(format!("/proc/{pid}/mem"));
    let o = without_ptrace(&cat).output().expect("setpriv (util-linux)");
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn the_daemon_is_not_dumpable_and_forgets_the_passphrase() {
    let server = Server::start();
    let user = User::new("secrets@example.com", true);
    user.signup(&server);
    let passphrase = format!("passphrase of {}", user.email);
    let src = user.home.path().join("src");
    let mnt = user.home.path().join("mnt");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::create_dir_all(&mnt).unwrap();
    // SAFETY: plain prctl on this process (collects the daemon).
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut mount = user.command();
    mount.args([
        "--json",
        "mount",
        src.to_str().unwrap(),
        mnt.to_str().unwrap(),
        "--daemon",
    ]);
    let out = without_ptrace(&mount).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pid = v["pid"].as_u64().unwrap() as u32;
    let mut daemon = Daemon {
        src: src.clone(),
        mnt: mnt.clone(),
        pid: Some(pid),
    };

    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(
        !environ.contains("RIGHTS_PASSPHRASE") && !environ.contains(&passphrase),
        "the passphrase is left in the daemon's environment"
    );

    // Control: an ordinary process of the same user can be read this way.
    let mut sleeper = without_ptrace(Command::new("sleep").arg("60")).spawn().unwrap();
    // Until setpriv has become `sleep`, it still holds every capability.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::fs::read_to_string(format!("/proc/{}/comm", sleeper.id())).unwrap_or_default() != "sleep\n" {
        assert!(std::time::Instant::now() < until, "sleep did not start");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let control = peek(sleeper.id());
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(!control.contains("Permission denied"), "control: {control}");
    let daemon_peek = peek(pid);
    assert!(
        daemon_peek.contains("Permission denied"),
        "the daemon's memory is open to the user's other processes: {daemon_peek}"
    );

    // The mount still has the keys it needs.
    std::fs::write(mnt.join("note.txt"), b"still works").unwrap();
    assert_eq!(std::fs::read(mnt.join("note.txt")).unwrap(), b"still works");
    daemon.unmount(&user);
    assert!(!mount_log(&user).contains(&passphrase), "the passphrase is in the log");
}
