//! Registration of publishing licences with the server: one licence at a
//! time (`rights protect`, `share`, `sync`) or in batches (the mount's
//! background sender). One place decides what each answer means: the
//! server has it; someone else registered the content id first (an alarm,
//! see [`Claims`]); the server is away or overloaded, so it waits in the
//! queue; or the server refused it, so it waits in the queue for `rights
//! status` and `rights sync` to show.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::{Claim, Claims, ClientError, Paths, PendingLog, REGISTER_BATCH_MAX, RegistrationQueue, SendRule, Session};
use crate::policy::{ContentId, PublishingLicence};

/// Where a registration stands, as commands report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// The server has it.
    Registered,
    /// Waiting in the queue for `rights sync`.
    Queued,
    /// Someone else registered the content id first: not registered.
    Claimed,
}

/// What became of one registration attempt.
#[derive(Debug)]
pub enum Outcome {
    /// The server has it; it left the queue.
    Registered,
    /// The server could not take it now (the reason); it waits in the queue.
    Queued(ClientError),
    /// The server refused it (the reason); it waits in the queue.
    Refused(ClientError),
    /// Someone else registered the content id first; it left the queue.
    Claimed(Claim),
}

impl Outcome {
    /// The state to report.
    pub fn registration(&self) -> Registration {
        match self {
            Self::Registered => Registration::Registered,
            Self::Queued(_) | Self::Refused(_) => Registration::Queued,
            Self::Claimed(_) => Registration::Claimed,
        }
    }
}

/// Whether a failed call is worth retrying later: the server is away,
/// failing, or asks us to slow down.
pub fn transient(e: &ClientError) -> bool {
    matches!(
        e,
        ClientError::Unreachable { .. }
            | ClientError::Server {
                status: 429 | 500..,
                ..
            }
    )
}

/// Sends registrations with sessions from `session` (made on demand, so a
/// process that is not logged in queues instead of failing).
pub struct Registrar<F> {
    queue: RegistrationQueue,
    claims: Claims,
    session: F,
}

impl<F: Fn() -> Result<Arc<Session>, ClientError>> Registrar<F> {
    /// A registrar for the user whose folders are `paths`.
    pub fn new(paths: &Paths, session: F) -> Self {
        Self {
            queue: RegistrationQueue::new(paths),
            claims: Claims::new(paths),
            session,
        }
    }

    /// Registers one licence, or queues it when the server cannot take it.
    pub fn register_or_queue(&self, id: &ContentId, pl: &PublishingLicence) -> Result<Outcome, ClientError> {
        match (self.session)().and_then(|s| s.register(pl)) {
            Ok(_) => {
                self.queue.remove(id)?;
                Ok(Outcome::Registered)
            }
            Err(ClientError::Server {
                status: 409, message, ..
            }) => Ok(Outcome::Claimed(self.claimed(id, &message)?)),
            Err(e) => {
                self.queue.push(id, pl)?;
                Ok(if transient(&e) {
                    Outcome::Queued(e)
                } else {
                    Outcome::Refused(e)
                })
            }
        }
    }

    /// Registers `entries` (`queued`: taken from the queue, so each is
    /// removed from it once registered), a hundred per request; false, with
    /// nothing lost, if the server is away from the start. Past the first
    /// request, entries that cannot be sent are queued on their own, as are
    /// those the server refused (for `rights status` and `rights sync` to
    /// show).
    pub fn send(&self, entries: &[(ContentId, PublishingLicence)], queued: bool) -> bool {
        for (n, chunk) in entries.chunks(REGISTER_BATCH_MAX).enumerate() {
            let licences: Vec<PublishingLicence> = chunk.iter().map(|(_, pl)| pl.clone()).collect();
            match (self.session)().and_then(|s| s.register_batch(&licences)) {
                Ok(results) => {
                    let mut registered = 0;
                    for ((id, pl), item) in chunk.iter().zip(results) {
                        if item.status == 409 {
                            let said = item.message.or(item.error).unwrap_or_default();
                            if let Err(e) = self.claimed(id, &said) {
                                tracing::error!(content_id = %id.to_hex(), error = %e, "could not record a claimed content id");
                            }
                        } else if matches!(item.status, 200 | 201) {
                            registered += 1;
                            tracing::debug!(content_id = %id.to_hex(), "registered");
                            if queued && let Err(e) = self.queue.remove(id) {
                                tracing::warn!(content_id = %id.to_hex(), error = %e, "could not drop a registered entry from the queue");
                            }
                        } else {
                            let why = item.message.or(item.error).unwrap_or_default();
                            tracing::warn!(content_id = %id.to_hex(), status = item.status, error = %why, "registration refused; kept in the queue");
                            self.queue_or_log(id, pl);
                        }
                    }
                    tracing::info!(count = registered, "registered new files");
                }
                // A server without batch registration.
                Err(ClientError::Server { status: 404 | 405, .. }) => {
                    if !self.send_each(chunk) && n == 0 {
                        return false;
                    }
                }
                Err(e) => {
                    let retry_later =
                        transient(&e) || matches!(e, ClientError::NotLoggedIn | ClientError::SessionExpired(_));
                    if retry_later && n == 0 {
                        return false;
                    }
                    tracing::warn!(error = %e, "registrations not sent; kept in the queue");
                    for (id, pl) in &entries[n * REGISTER_BATCH_MAX..] {
                        self.queue_or_log(id, pl);
                    }
                    return true;
                }
            }
        }
        true
    }

    /// Records that someone else registered `id` first, says so in the
    /// log, and drops it from the queue (retrying cannot help).
    fn claimed(&self, id: &ContentId, server_said: &str) -> Result<Claim, ClientError> {
        let claim = self.claims.record(id, server_said)?;
        tracing::error!(content_id = %id.to_hex(), "{}", claim.alarm());
        self.queue.remove(id)?;
        Ok(claim)
    }

    fn queue_or_log(&self, id: &ContentId, pl: &PublishingLicence) {
        if self.queue.contains(id) {
            return;
        }
        if let Err(e) = self.queue.push(id, pl) {
            tracing::error!(content_id = %id.to_hex(), error = %e, "could not queue a registration");
        }
    }

    /// One request per entry; false if the server is away at the first.
    fn send_each(&self, entries: &[(ContentId, PublishingLicence)]) -> bool {
        let mut away = false;
        for (i, (id, pl)) in entries.iter().enumerate() {
            if away {
                self.queue_or_log(id, pl);
                continue;
            }
            match self.register_or_queue(id, pl) {
                Ok(Outcome::Registered) => tracing::info!(content_id = %id.to_hex(), "registered"),
                Ok(Outcome::Claimed(_)) => {}
                Ok(Outcome::Queued(_)) if i == 0 => {
                    // Queued just now; nothing else was tried.
                    let _ = self.queue.remove(id);
                    return false;
                }
                Ok(Outcome::Queued(_)) => away = true,
                Ok(Outcome::Refused(e)) | Err(e) => {
                    tracing::warn!(content_id = %id.to_hex(), error = %e, "registration refused; kept in the queue")
                }
            }
        }
        true
    }

    /// The mount's background sender: registers new content when
    /// [`SendRule::MOUNT`] says (once the mount has been idle for a second
    /// by `quiet_since`, at the latest 10 s after the first new file), and
    /// every 30 s while something waits; first what the mount created (from
    /// `pending`), then the queue. A message on `wake` says a burst began.
    /// After a failed pass (server away) it waits the full 30 s, however
    /// many files are created meanwhile; what the mount created stays in its
    /// log meanwhile. Returns when `wake`'s sender is gone.
    pub fn run(self, pending: Arc<PendingLog>, quiet_since: impl Fn() -> Instant, wake: Receiver<()>) {
        use std::sync::mpsc::RecvTimeoutError::{Disconnected, Timeout};
        let retry = Duration::from_secs(30);
        let mut next_try = Instant::now();
        loop {
            match wake.recv_timeout(retry) {
                // A burst began: wait for the mount to pause.
                Ok(()) => {
                    while let Some(wait) = pending.due_in(&SendRule::MOUNT, quiet_since()).filter(|w| !w.is_zero()) {
                        if let Err(Disconnected) = wake.recv_timeout(wait) {
                            return;
                        }
                    }
                }
                Err(Timeout) => next_try = Instant::now(),
                Err(Disconnected) => return,
            }
            while wake.try_recv().is_ok() {}
            if Instant::now() < next_try {
                continue;
            }
            if let Some(batch) = pending.take() {
                if !self.send(&batch.entries, false) {
                    tracing::info!("server unreachable: new files stay pending; retrying in 30 s");
                    pending.put_back(batch);
                    next_try = Instant::now() + retry;
                    continue;
                }
                if let Err(e) = batch.done() {
                    tracing::warn!(error = %e, "could not remove a finished registration log");
                }
            }
            let queued: Vec<_> = self
                .queue
                .list()
                .into_iter()
                .filter_map(|(id, pl)| Some((id, pl.ok()?)))
                .collect();
            if !queued.is_empty() && !self.send(&queued, true) {
                tracing::info!("server unreachable: registrations stay queued; retrying in 30 s");
                next_try = Instant::now() + retry;
            }
        }
    }
}
