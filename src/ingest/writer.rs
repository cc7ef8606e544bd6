//! Group commit: request handlers hand rows to a bounded queue and wait; writer threads commit whatever
//! has gathered in one transaction and then answer every waiter.
//!
//! Invariant: a waiter gets `Ok` only after the transaction holding its row has committed. The queue is
//! bounded, so a database slower than the traffic makes requests wait (then 503), never memory grow.
//! The writers stop when the last [`Writer`] clone is dropped and the queue is drained: shutdown
//! cannot lose an accepted row.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::store::{InsertError, NewPageview, PageviewInserter, Store};
use crate::telemetry::lane::{Kind, LaneSpan, Name, Parent, SpanRef, Value};
use crate::telemetry::names;

/// Why a row was not stored.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WriteError {
    /// The queue stayed full for the whole wait, or the database is unreachable: try again later.
    #[error("storage is busy, try again later")]
    Busy,
    /// This row was refused by the database (e.g. its site was deleted a moment ago).
    #[error("the pageview was refused by the database: {0}")]
    Refused(String),
    /// The server is shutting down and takes no new rows.
    #[error("the server is shutting down")]
    Closed,
}

struct Pending {
    row: NewPageview,
    done: oneshot::Sender<Result<(), WriteError>>,
    /// The request's span, linked from the batch's INSERT span so each trace leads to its statement.
    link: Option<SpanRef>,
}

/// The inserter takes the queued entries themselves: no per-batch list of rows to allocate.
impl std::borrow::Borrow<NewPageview> for Pending {
    fn borrow(&self) -> &NewPageview {
        &self.row
    }
}

/// How the writers batch (the `SQUIRREL_INGEST_*` settings).
#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    /// Writer threads committing at once.
    pub writers: usize,
    /// Most rows per transaction.
    pub batch: usize,
    /// Rows queued before requests wait for room.
    pub capacity: usize,
    /// How long a request waits for room before giving up (503).
    pub wait: Duration,
    /// How long a writer waits for a small batch to grow while requests keep coming.
    pub linger: Duration,
}

/// The handle request handlers use. Cloning it keeps the writers alive.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::Sender<Pending>,
    wait: Duration,
}

impl Writer {
    /// Starts `settings.writers` threads on `tasks`, each with its own [`PageviewInserter`]. Call
    /// from async code.
    pub fn spawn(tasks: &TaskTracker, store: &Store, settings: WriterSettings) -> Result<Writer, InsertError> {
        let (queue, receiver) = mpsc::channel(settings.capacity);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..settings.writers.max(1) {
            let inserter = store.pageview_inserter()?;
            let receiver = receiver.clone();
            let (batch, linger) = (settings.batch, settings.linger);
            tasks.spawn_blocking(move || run_writer(inserter, &receiver, batch, linger));
        }
        Ok(Writer { queue, wait: settings.wait })
    }

    /// Stores one pageview; the future resolves once it is committed. The batch's INSERT span links
    /// to `link`.
    ///
    /// The row is queued before the future is made: room in the queue is the usual case and needs no
    /// await. Axum boxes every request's future, and one holding the row and a timer (over a kilobyte)
    /// sends each request through glibc malloc's slow path; this one holds a receiver and, only when
    /// the queue is full, the boxed row waiting for room.
    pub fn write(
        &self,
        row: NewPageview,
        link: Option<SpanRef>,
    ) -> impl Future<Output = Result<(), WriteError>> + Send + '_ {
        let (done, committed) = oneshot::channel();
        let waiting_for_room = match self.queue.try_send(Pending { row, done, link }) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(pending)) => Ok(Some(Box::new(pending))),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(WriteError::Closed),
        };
        async move {
            if let Some(pending) = waiting_for_room? {
                match Box::pin(self.queue.send_timeout(*pending, self.wait)).await {
                    Ok(()) => {}
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => return Err(WriteError::Busy),
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return Err(WriteError::Closed),
                }
            }
            // A writer always answers before dropping `done`; a dropped sender means the thread died.
            committed.await.unwrap_or(Err(WriteError::Closed))
        }
    }

    /// Whether the queue has no room left: new requests wait for it (then get 503).
    pub fn is_full(&self) -> bool {
        self.queue.capacity() == 0
    }

    /// Rows waiting for a writer right now.
    pub fn queued(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// One writer thread: wait for rows, take whatever has gathered (up to `batch`), commit, answer.
fn run_writer(
    mut inserter: PageviewInserter,
    receiver: &Mutex<mpsc::Receiver<Pending>>,
    batch: usize,
    linger: Duration,
) {
    let mut pending = Vec::with_capacity(batch);
    let mut last_batch = 0;
    loop {
        // Only one writer gathers at a time; the others commit meanwhile. A lone request is never
        // held back to fill a batch: the batch is whatever is queued when the first row arrives.
        let waiting = {
            let mut receiver = receiver.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let Some(first) = receiver.blocking_recv() else {
                return; // every Writer dropped and the queue is empty
            };
            pending.push(first);
            drain(&mut receiver, &mut pending, batch);
            // Under concurrent load, a commit of two or three rows spends most of its time on
            // per-transaction costs (locks, WAL frame headers, a write per page). Lingering a
            // moment lets the batch grow; a lone request (last batch of one) never waits.
            if !linger.is_zero() && last_batch > 1 && pending.len() < batch / 8 {
                std::thread::sleep(linger);
                drain(&mut receiver, &mut pending, batch);
            }
            receiver.len()
        };
        last_batch = pending.len();
        crate::telemetry::metrics::writer_batch(pending.len(), waiting);
        commit(&mut inserter, &mut pending);
    }
}

fn drain(receiver: &mut mpsc::Receiver<Pending>, pending: &mut Vec<Pending>, batch: usize) {
    while pending.len() < batch {
        match receiver.try_recv() {
            Ok(next) => pending.push(next),
            Err(_) => break,
        }
    }
}

fn commit(inserter: &mut PageviewInserter, pending: &mut Vec<Pending>) {
    // A root span per batch (on the fast lane, like the requests'); its INSERT child links to every
    // request span it stores.
    let mut span = LaneSpan::start(Name::Static(names::INGEST_BATCH), Kind::Internal, Parent::Root);
    span.set(names::BATCH_SIZE, Value::Int(pending.len() as i64));
    let result = inserter.insert(pending, pending.iter().filter_map(|p| p.link), span.context());
    match result {
        Ok(()) => {
            for p in pending.drain(..) {
                let _ = p.done.send(Ok(()));
            }
        }
        Err(InsertError::Unavailable(err)) => {
            tracing::warn!(error = %err, rows = pending.len(), "batch not stored: database unavailable");
            for p in pending.drain(..) {
                let _ = p.done.send(Err(WriteError::Busy));
            }
        }
        Err(InsertError::Refused(err)) if pending.len() > 1 => {
            // One bad row must not sink its neighbours: store them one by one to find it.
            tracing::warn!(error = %err, rows = pending.len(), "batch refused; retrying rows one by one");
            for p in pending.drain(..) {
                let result = inserter.insert(std::slice::from_ref(&p), p.link, span.context()).map_err(to_write_error);
                let _ = p.done.send(result);
            }
        }
        Err(err) => {
            let error = to_write_error(err);
            for p in pending.drain(..) {
                let _ = p.done.send(Err(error.clone()));
            }
        }
    }
}

fn to_write_error(err: InsertError) -> WriteError {
    match err {
        InsertError::Unavailable(_) => WriteError::Busy,
        InsertError::Refused(message) => WriteError::Refused(message),
    }
}
