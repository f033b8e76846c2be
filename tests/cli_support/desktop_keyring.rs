//! A desktop keyring for machines without a desktop: a private D-Bus
//! session bus (`dbus-daemon` with its own configuration and socket in a
//! temporary folder) and a real `gnome-keyring-daemon` on it, its login
//! keyring created and unlocked with a test password given on stdin, as
//! PAM does at a graphical login. Runs as root and headless.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The login password the keyring is unlocked with.
const PASSWORD: &str = "login password of the test user";

/// A session bus with nothing on it.
pub struct SessionBus {
    child: Child,
    /// `DBUS_SESSION_BUS_ADDRESS` of this bus.
    pub address: String,
}

impl SessionBus {
    /// Starts a bus listening in `dir`. Its configuration has no service
    /// folders, so nothing (such as the system's own keyring daemon) is
    /// started on demand: what answers is only what a test starts.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let conf = dir.join("session.conf");
        std::fs::write(
            &conf,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.join("bus").display()
            ),
        )
        .unwrap();
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", conf.display()))
            .args(["--nofork", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            // Only a note that it could not raise its file limit (not root's
            // to raise in a container).
            .stderr(Stdio::null())
            .spawn()
            .expect("start dbus-daemon (scripts/install-deps.sh installs it)");
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(address.starts_with("unix:"), "dbus-daemon printed {address:?}");
        Self { child, address }
    }

    /// Asks the bus itself (org.freedesktop.DBus) or a service on it.
    fn call(&self, dest: &str, path: &str, method: &str, arg: &str) -> String {
        let o = Command::new("dbus-send")
            .arg(format!("--bus={}", self.address))
            .args(["--print-reply", &format!("--dest={dest}"), path, method, arg])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GNOME Keyring on a private session bus.
pub struct DesktopKeyring {
    /// The daemon's HOME and XDG folders: `data/keyrings/login.keyring`
    /// is the keyring file, kept across [`DesktopKeyring::restart`].
    pub dir: tempfile::TempDir,
    daemon: Option<Child>,
    bus: Option<SessionBus>,
}

impl DesktopKeyring {
    pub fn start() -> Self {
        let mut k = Self {
            dir: tempfile::tempdir().unwrap(),
            daemon: None,
            bus: None,
        };
        k.up();
        k
    }

    /// `DBUS_SESSION_BUS_ADDRESS` for programs that use this keyring; the
    /// same after a restart.
    pub fn address(&self) -> String {
        format!("unix:path={}", self.dir.path().join("bus/bus").display())
    }

    fn folder(&self, name: &str) -> PathBuf {
        let d = self.dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Starts the bus and the daemon, then waits until the login keyring
    /// is the default collection (the daemon unlocks or creates it after
    /// it takes its name on the bus).
    fn up(&mut self) {
        let run = self.folder("run");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700)).unwrap();
        let bus = SessionBus::start(&self.folder("bus"));
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.folder("home"))
            .env("XDG_DATA_HOME", self.folder("data"))
            .env("XDG_CONFIG_HOME", self.folder("config"))
            .env("XDG_CACHE_HOME", self.folder("cache"))
            .env("XDG_RUNTIME_DIR", &run)
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start gnome-keyring-daemon (scripts/install-deps.sh installs it)");
        // The password ends at end of input, as `--unlock` expects.
        daemon.stdin.take().unwrap().write_all(PASSWORD.as_bytes()).unwrap();
        let started = Instant::now();
        loop {
            let alias = bus.call(
                "org.freedesktop.secrets",
                "/org/freedesktop/secrets",
                "org.freedesktop.Secret.Service.ReadAlias",
                "string:default",
            );
            if alias.contains("/collection/login") {
                break;
            }
            if let Some(status) = daemon.try_wait().unwrap() {
                panic!("gnome-keyring-daemon exited ({status}) before its login keyring was ready");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "gnome-keyring-daemon never made its login keyring the default (ReadAlias: {alias:?})"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.daemon = Some(daemon);
        self.bus = Some(bus);
    }

    /// Stops the daemon and the bus: nothing answers at the address any
    /// more (a user's `rights` outside their desktop session).
    pub fn stop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            // SIGTERM, as at logout: the daemon quits in its own way.
            // SAFETY: a signal to a child of this process, not yet reaped.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let _ = d.wait();
        }
        self.bus = None;
    }

    /// Stops everything and starts again on the same keyring file, as
    /// after a reboot and a new login.
    pub fn restart(&mut self) {
        self.stop();
        self.up();
    }

    /// `secret-tool ARGS` against this keyring, as any other program of
    /// the user would see it.
    pub fn secret_tool(&self, args: &[&str]) -> Output {
        Command::new("secret-tool")
            .args(args)
            .env("DBUS_SESSION_BUS_ADDRESS", self.address())
            .stdin(Stdio::null())
            .output()
            .expect("run secret-tool (scripts/install-deps.sh installs libsecret-tools)")
    }
}

impl Drop for DesktopKeyring {
    fn drop(&mut self) {
        self.stop();
    }
}
