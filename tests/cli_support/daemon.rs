//! A `rights mount --daemon` of a user's folder, detached and killed even
//! when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::User;

/// A mount daemon started by the real `rights` binary.
pub struct Daemon {
    pub src: PathBuf,
    pub mnt: PathBuf,
    pub pid: Option<u32>,
}

impl Daemon {
    /// Mounts `src` at `mnt` in the background. This process becomes the
    /// daemon's subreaper, so that a killed daemon can be collected.
    pub fn start(user: &User, src: &Path, mnt: &Path) -> Self {
        // SAFETY: plain prctl on this process.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        std::fs::create_dir_all(src).unwrap();
        std::fs::create_dir_all(mnt).unwrap();
        let mut d = Self {
            src: src.to_path_buf(),
            mnt: mnt.to_path_buf(),
            pid: None,
        };
        d.restart(user);
        d
    }

    /// Mounts the same folders again.
    pub fn restart(&mut self, user: &User) {
        assert!(self.pid.is_none(), "still mounted");
        let v = user.mount_daemon(&self.src, &self.mnt);
        self.pid = Some(v["pid"].as_u64().expect("daemon pid") as u32);
    }

    /// Kills the daemon with SIGKILL, collects it and detaches the dead
    /// mount (`rights unmount --force`).
    pub fn kill(&mut self, user: &User) {
        let pid = self.pid.take().expect("running");
        // SAFETY: plain signal to the daemon this test started.
        assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
        user.ok(&["unmount", "--force", self.mnt.to_str().unwrap()]);
        reap(pid);
    }

    /// Unmounts cleanly and collects the daemon.
    pub fn unmount(&mut self, user: &User) {
        let pid = self.pid.take().expect("running");
        user.ok(&["unmount", self.mnt.to_str().unwrap()]);
        reap(pid);
    }
}

impl Drop for Daemon {
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

/// Collects an exited daemon (this process is its subreaper).
pub fn reap(pid: u32) {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let mut st = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let r = unsafe { libc::waitpid(pid as i32, &mut st, libc::WNOHANG) };
        if r != 0 {
            return;
        }
        assert!(Instant::now() < until, "daemon {pid} does not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The lines of the user's mount logs.
pub fn mount_log(user: &User) -> String {
    let logs = user.home.path().join("data/rightsfs/logs");
    let mut out = String::new();
    for e in std::fs::read_dir(&logs).into_iter().flatten().flatten() {
        out.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    out
}
