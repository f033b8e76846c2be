//! Group commit of the audit rows licences append. A request hands its row
//! to the queue and waits; a writer takes every row waiting at that moment
//! and writes them in one transaction, then answers each request. The
//! licence goes out only once its row is committed, so none is issued
//! unrecorded, and a burst of licences costs the database one commit
//! instead of one each.

use std::sync::{Arc, OnceLock};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::store::{AuditRecord, IssueCheck, Store};

/// Rows written in one transaction at most.
const BATCH_MAX: usize = 256;

/// Rows waiting for a writer at most; requests beyond wait to enqueue.
const QUEUE_MAX: usize = 4096;

/// Why a row was not written.
#[derive(Debug)]
pub enum NotWritten {
    /// Its check no longer held (token ended, policy changed or revoked).
    CheckFailed,
    /// The database failed; the message is logged.
    Store(String),
}

struct Pending {
    row: AuditRecord,
    check: Option<IssueCheck>,
    done: oneshot::Sender<Result<(), NotWritten>>,
}

/// The queue and its writers, started on first use.
pub struct AuditQueue {
    store: Arc<dyn Store>,
    writers: usize,
    tx: OnceLock<mpsc::Sender<Pending>>,
}

impl AuditQueue {
    /// A queue writing to `store` with `writers` transactions in flight at
    /// most (one for SQLite, which writes one transaction at a time).
    pub fn new(store: Arc<dyn Store>, writers: usize) -> Self {
        Self {
            store,
            writers: writers.max(1),
            tx: OnceLock::new(),
        }
    }

    fn sender(&self) -> &mpsc::Sender<Pending> {
        self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::channel(QUEUE_MAX);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..self.writers {
                tokio::spawn(write_batches(self.store.clone(), rx.clone()));
            }
            tx
        })
    }

    /// Writes `row` (if `check` holds in the transaction that writes it)
    /// and returns once it is committed.
    pub async fn write(&self, row: AuditRecord, check: Option<IssueCheck>) -> Result<(), NotWritten> {
        let (done, answer) = oneshot::channel();
        self.sender()
            .send(Pending { row, check, done })
            .await
            .map_err(|_| NotWritten::Store("the audit writer stopped".into()))?;
        answer
            .await
            .map_err(|_| NotWritten::Store("the audit writer stopped".into()))?
    }
}

/// One writer: takes what waits (up to [`BATCH_MAX`]), writes it, answers.
async fn write_batches(store: Arc<dyn Store>, rx: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            if rx.recv_many(&mut batch, BATCH_MAX).await == 0 {
                return;
            }
        }
        let (rows, answers): (Vec<_>, Vec<_>) = batch.into_iter().map(|p| ((p.row, p.check), p.done)).unzip();
        match store.add_audits(rows).await {
            Ok(written) => {
                for (done, w) in answers.into_iter().zip(written) {
                    let _ = done.send(if w { Ok(()) } else { Err(NotWritten::CheckFailed) });
                }
            }
            Err(e) => {
                let e = e.to_string();
                for done in answers {
                    let _ = done.send(Err(NotWritten::Store(e.clone())));
                }
            }
        }
    }
}
