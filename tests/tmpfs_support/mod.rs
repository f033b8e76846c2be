//! A size-limited tmpfs for the full-disk tests (needs root; CI runs as root).

use std::path::Path;
use std::process::Command;

/// Mounts a tmpfs of `size` (e.g. "4m") on `dir`. Returns false, after
/// saying the test is skipped, where mounting is not allowed; under CI
/// (`CI` set) that is a failure instead.
pub fn mount(dir: &Path, size: &str) -> bool {
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must be able to mount a tmpfs (run as root)"
        );
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
    }
    ok
}

/// Detaches the tmpfs on `dir` (lazily, so a failing test never blocks it).
pub fn unmount(dir: &Path) {
    let _ = Command::new("umount").arg("-l").arg(dir).status();
}
