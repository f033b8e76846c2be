//! A user's `rights mount --daemon` of their own folder, for tests that
//! drive real mounts of several people against one server.

use std::path::PathBuf;

use super::User;

/// A daemon mount of `user`, unmounted (forcefully if need be) on drop.
pub struct Mount<'a> {
    pub user: &'a User,
    pub src: PathBuf,
    pub mnt: PathBuf,
}

impl<'a> Mount<'a> {
    /// Mounts `~/protected` at `~/mnt` with `extra` arguments.
    pub fn new(user: &'a User, extra: &[&str]) -> Self {
        let src = user.home.path().join("protected");
        let mnt = user.home.path().join("mnt");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::create_dir_all(&mnt).unwrap();
        let mut args = vec!["mount", src.to_str().unwrap(), mnt.to_str().unwrap(), "--daemon"];
        args.extend_from_slice(extra);
        user.ok(&args);
        Self { user, src, mnt }
    }

    /// Everything the mount's daemons logged so far.
    pub fn log(&self) -> String {
        let logs = self.user.home.path().join("data/rightsfs/logs");
        std::fs::read_dir(logs)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect()
    }
}

impl Drop for Mount<'_> {
    fn drop(&mut self) {
        let m = self.mnt.to_str().unwrap().to_string();
        if !self.user.run(&["unmount", &m]).status.success() {
            let _ = self.user.run(&["unmount", "--force", &m]);
        }
    }
}
