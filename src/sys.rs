//! The crate's only `unsafe` code: calls into the C library, each behind a
//! safe function (or, where the caller must promise something, an
//! `unsafe fn` saying what) with the reason it is sound. Everything else
//! reaches the kernel through `std` or through `rustix`'s safe system
//! calls; what is here has no safe equivalent in either: signal masks, a
//! hook in a forked child, the allocator's tuning, and scrubbing a secret
//! from the environment block. The crate denies `unsafe_code` everywhere
//! else (`lib.rs`).

use std::ffi::CStr;

/// A set of signals, blocked in the threads that hold it so that one
/// thread can wait for them ([`SignalSet::block`], [`SignalSet::wait`]).
#[derive(Clone, Copy)]
pub struct SignalSet(libc::sigset_t);

impl SignalSet {
    /// Blocks `signals` in the calling thread, and so in every thread it
    /// starts later; the set, to wait on.
    pub fn block(signals: &[libc::c_int]) -> Self {
        // SAFETY: `sigemptyset` initialises the zeroed local set before any
        // other use; `sigaddset` adds to that set; `pthread_sigmask`
        // changes the calling thread's mask only, reading `set` and writing
        // through no pointer (the old mask is not asked for).
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for &s in signals {
                libc::sigaddset(&mut set, s);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Self(set)
        }
    }

    /// Waits for one of the signals (blocked beforehand) and answers which.
    pub fn wait(&self) -> libc::c_int {
        let mut sig = 0;
        // SAFETY: `self.0` is a set initialised in `block`; `sig` is a valid
        // out-pointer for the call's duration.
        unsafe { libc::sigwait(&self.0, &mut sig) };
        sig
    }
}

/// Makes the process `cmd` starts leader of a new session (`setsid` in
/// the child before it runs the program), detached from any terminal.
pub fn new_session_on_exec(cmd: &mut std::process::Command) {
    // SAFETY: the hook runs in the forked child before exec and only makes
    // one system call, which allocates nothing, takes no lock and is
    // async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, || {
            let _ = rustix::process::setsid();
            Ok(())
        });
    }
}

/// Sets glibc allocator parameters (`mallopt`): `(parameter, value)` pairs.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_malloc(settings: &[(libc::c_int, libc::c_int)]) {
    for &(param, value) in settings {
        // SAFETY: mallopt only sets allocator parameters; unknown ones are
        // refused by its return value, which is advisory here.
        unsafe { libc::mallopt(param, value) };
    }
}

/// Hands the allocator's free memory back to the system (`malloc_trim`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn trim_malloc() {
    // SAFETY: malloc_trim only returns free pages; it is thread-safe.
    unsafe { libc::malloc_trim(0) };
}

/// Overwrites the variable `name` where it lies in the environment block
/// (the bytes /proc/PID/environ shows), then unsets it: what `remove_var`
/// alone would leave readable there.
///
/// # Safety
///
/// No other thread may read or write the environment meanwhile (as for
/// [`std::env::remove_var`]).
pub unsafe fn scrub_env(name: &CStr) {
    // SAFETY: the caller keeps other threads off the environment. `getenv`
    // points at the value of the `NAME=value` string in the environment
    // block, so `name.len() + 1` bytes before it start that string and
    // `strlen(v)` bytes follow: exactly that string is overwritten, then
    // the variable is unset.
    unsafe {
        let v = libc::getenv(name.as_ptr());
        if !v.is_null() {
            let start = name.to_bytes().len() + 1;
            std::ptr::write_bytes(v.sub(start), 0, start + libc::strlen(v));
        }
        libc::unsetenv(name.as_ptr());
    }
}
