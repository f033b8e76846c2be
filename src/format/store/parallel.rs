//! Sealing and opening long requests on several cores, and the per-thread
//! buffer they seal into. Kept apart from the file logic because a thread
//! pool and thread-local buffers are process resources, not format rules.

use zeroize::Zeroize;

use crate::format::FormatError;

/// Below this many blocks a request is sealed or opened on one thread; above
/// it, split across cores (handing work to a helper thread costs about one
/// block's worth).
const PARALLEL_BLOCKS: u64 = 32;
/// Blocks in one share of a parallel request (256 KiB at the default block
/// size).
const SHARE_BLOCKS: u64 = 64;

/// CPUs this process may use, asked once (the standard library reads the
/// cgroup limits on every call).
fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Helper threads for long requests: one fewer than the cores, because the
/// calling thread does a share itself. Started once; a thread per request
/// cost as much as sealing a few blocks.
fn helpers() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        if cores() < 2 {
            return None;
        }
        rayon::ThreadPoolBuilder::new()
            .num_threads(cores() - 1)
            .thread_name(|i| format!("rightsfs-crypto-{i}"))
            .build()
            .map_err(|e| tracing::warn!(error = %e, "no crypto helper threads; sealing on one thread"))
            .ok()
    })
    .as_ref()
}

/// Runs `f(first_index, bytes)` over a run of blocks laid out at `stride`,
/// cut into shares (see [`share_out`]).
pub(super) fn for_block_runs<F>(buf: &mut [u8], first: u64, count: u64, stride: usize, f: F) -> Result<(), FormatError>
where
    F: Fn(u64, &mut [u8]) -> Result<(), FormatError> + Sync,
{
    match share_len(count) {
        None => f(first, buf),
        Some((pool, per)) => share_out(
            pool,
            (first..)
                .step_by(per as usize)
                .zip(buf.chunks_mut(per as usize * stride)),
            |(start, run)| f(start, run),
        ),
    }
}

/// Runs `f(first_index, blocks)` over blocks `first..first + count`, cut
/// into shares (see [`share_out`]): for work that needs no common buffer,
/// so that each share can use a buffer of its own thread the size of a
/// share instead of one the size of the request.
pub(super) fn for_block_shares<F>(first: u64, count: u64, f: F) -> Result<(), FormatError>
where
    F: Fn(u64, u64) -> Result<(), FormatError> + Sync,
{
    let end = first + count;
    match share_len(count) {
        None => f(first, count),
        Some((pool, per)) => share_out(
            pool,
            (first..end).step_by(per as usize).map(|s| (s, per.min(end - s))),
            |(start, n)| f(start, n),
        ),
    }
}

/// The helper pool and the blocks in one share, if `count` blocks are
/// worth splitting.
fn share_len(count: u64) -> Option<(&'static rayon::ThreadPool, u64)> {
    match helpers() {
        Some(pool) if count >= PARALLEL_BLOCKS => Some((pool, SHARE_BLOCKS.min(count.div_ceil(2)))),
        _ => None,
    }
}

/// Runs `f` on every share, taken in turn by the calling thread and the
/// helper threads. Shares smaller than a core's half let one thread write
/// its sealed share while another still seals, instead of both waiting for
/// the file's lock at the end. The first error is returned once all
/// threads have stopped.
fn share_out<T: Send>(
    pool: &rayon::ThreadPool,
    shares: impl Iterator<Item = T> + Send,
    f: impl Fn(T) -> Result<(), FormatError> + Sync,
) -> Result<(), FormatError> {
    let shares = std::sync::Mutex::new(shares);
    let failed = std::sync::Mutex::new(Ok(()));
    let work = || {
        loop {
            let next = shares.lock().unwrap_or_else(|p| p.into_inner()).next();
            let Some(share) = next else { return };
            if let Err(e) = f(share) {
                *failed.lock().unwrap_or_else(|p| p.into_inner()) = Err(e);
                return;
            }
        }
    };
    pool.in_place_scope(|s| {
        for _ in 0..pool.current_num_threads() {
            s.spawn(|_| work());
        }
        work();
    });
    failed.into_inner().unwrap_or_else(|p| p.into_inner())
}

/// Runs `f` on this thread's sealing buffer, `len` bytes long. After a
/// successful seal the buffer holds only nonces, ciphertext and tags, so it
/// is kept for the next request (no allocation, page faults or zeroing per
/// write); if `f` fails, plaintext may be left in it and it is wiped.
/// Buffers above 4 MiB are not kept.
pub(super) fn with_scratch<R>(
    len: usize,
    f: impl FnOnce(&mut [u8]) -> Result<R, FormatError>,
) -> Result<R, FormatError> {
    const KEEP_MAX: usize = 4 << 20;
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let run = |buf: &mut Vec<u8>| {
        if buf.len() < len {
            buf.resize(len, 0);
        }
        let r = f(&mut buf[..len]);
        if r.is_err() {
            buf.as_mut_slice().zeroize();
        }
        r
    };
    if len > KEEP_MAX {
        return run(&mut Vec::new());
    }
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut buf) => run(&mut buf),
        Err(_) => run(&mut Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::{FormatError, with_scratch};

    #[test]
    fn scratch_is_wiped_when_sealing_fails_and_kept_when_it_succeeds() {
        let r: Result<(), _> = with_scratch(4096, |b| {
            b.fill(0x5a);
            Err(FormatError::TooLarge)
        });
        assert!(r.is_err());
        with_scratch(8192, |b| {
            assert!(b[..4096].iter().all(|x| *x == 0), "plaintext left after a failure");
            b.fill(0xc3);
            Ok(())
        })
        .unwrap();
        with_scratch(100, |b| {
            assert!(b.iter().all(|x| *x == 0xc3), "a sealed buffer is reused as it is");
            Ok(())
        })
        .unwrap();
    }
}
