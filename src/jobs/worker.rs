//! The worker: takes jobs from the queue and runs them, one at a time.
//!
//! Delivery is at-least-once. `BLMOVE` puts the job into this worker's processing list; it leaves
//! only when the job is acknowledged (done), scheduled for a retry (failed, exponential backoff) or
//! dead-lettered (failed its last attempt). A heartbeat key with a TTL says the worker is alive; once
//! it expires, any worker's [`Queue::sweep`] puts the held job back. Redis going away is waited out
//! with backoff: nothing is lost, and a rerun of an aggregation changes nothing.
//!
//! Stops when `stop` is cancelled (SIGTERM): takes nothing new, lets the running job finish within
//! the grace period, else puts it back on the queue and leaves (the interrupted transaction rolls
//! back; the days it already committed stay, and are correct).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::job::Job;
use super::{JobError, Queue, QueueError, aggregate};
use crate::store::Store;
use crate::telemetry::names;

/// How long one blocking take waits before the worker looks at `stop` again.
const BLOCK: Duration = Duration::from_secs(1);
/// How often a long-running worker promotes due retries and sweeps dead workers' jobs.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a worker run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    pub succeeded: u64,
    pub retried: u64,
    pub dead: u64,
    /// A burst worker stopped because Redis stayed unavailable.
    pub gave_up: bool,
}

pub struct Worker {
    queue: Queue,
    store: Store,
    id: String,
    /// How long a running job may go on after `stop` before it is put back.
    grace: Duration,
    busy: Arc<AtomicBool>,
}

impl Worker {
    pub fn new(queue: Queue, store: Store, grace: Duration) -> Worker {
        let host = std::env::var("HOSTNAME").unwrap_or_default();
        let id = format!("{}{}{}", host, if host.is_empty() { "" } else { "-" }, uuid::Uuid::new_v4().simple());
        Worker { queue, store, id, grace, busy: Arc::new(AtomicBool::new(false)) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Processes jobs until `stop`, or (`burst`) until the queue has nothing ready. Redis errors
    /// are logged and waited out, never returned.
    pub async fn run(&self, stop: CancellationToken, burst: bool, redis_url_for_span: &str) -> WorkerSummary {
        let span = tracing::info_span!(
            names::RQ_WORKER,
            { names::QUEUE } = self.queue.name(),
            { names::REDIS_URL } = redis_url_for_span,
            worker.id = self.id.as_str(),
        );
        span.in_scope(|| tracing::info!(queue = self.queue.name(), "worker started"));
        drop(span);
        let heartbeat = self.spawn_heartbeat(stop.child_token());
        let summary = self.work(&stop, burst).await;
        heartbeat.cancel();
        if let Err(err) = self.queue.leave(&self.id).await {
            tracing::debug!(error = %err, "could not unregister; the heartbeat expires by itself");
        }
        tracing::info!(succeeded = summary.succeeded, retried = summary.retried, dead = summary.dead, "worker stopped");
        summary
    }

    fn spawn_heartbeat(&self, stop: CancellationToken) -> CancellationToken {
        let (queue, id, busy) = (self.queue.clone(), self.id.clone(), self.busy.clone());
        let every = queue.settings().heartbeat_ttl / 3;
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let state = if busy.load(Ordering::Relaxed) { "busy" } else { "idle" };
                if let Err(err) = queue.heartbeat(&id, state).await {
                    tracing::debug!(error = %err, "heartbeat failed");
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        token
    }

    async fn work(&self, stop: &CancellationToken, burst: bool) -> WorkerSummary {
        let mut summary = WorkerSummary::default();
        let mut blocking = None;
        let mut backoff = Duration::from_millis(200);
        let mut down_since: Option<std::time::Instant> = None;
        let mut last_maintenance: Option<std::time::Instant> = None;
        while !stop.is_cancelled() {
            let taken = async {
                if burst || last_maintenance.is_none_or(|at| at.elapsed() >= MAINTENANCE_EVERY) {
                    // Registered before sweeping, so no other sweeper takes this worker for dead.
                    self.queue.heartbeat(&self.id, "idle").await?;
                    self.queue.promote_due().await?;
                    let swept = self.queue.sweep().await?;
                    if swept > 0 {
                        tracing::warn!(jobs = swept, "re-queued jobs of workers that stopped responding");
                    }
                    last_maintenance = Some(std::time::Instant::now());
                }
                if burst {
                    self.queue.try_take(&self.id).await
                } else {
                    let conn = match &mut blocking {
                        Some(conn) => conn,
                        None => blocking.insert(self.queue.blocking_connection(BLOCK).await?),
                    };
                    self.queue.take(conn, &self.id, BLOCK).await
                }
            }
            .await;
            match taken {
                Ok(Some((raw, job))) => {
                    log_redis_back(&mut down_since);
                    backoff = Duration::from_millis(200);
                    self.handle(stop, &raw, job, &mut summary).await;
                }
                Ok(None) => {
                    log_redis_back(&mut down_since);
                    backoff = Duration::from_millis(200);
                    if burst {
                        break;
                    }
                }
                Err(err) => {
                    if down_since.is_none() {
                        tracing::warn!(error = %anyhow::Error::from(err), "queue unavailable; retrying with backoff");
                        down_since = Some(std::time::Instant::now());
                    }
                    // A script's burst run fails fast rather than hang; a long-running worker waits.
                    if burst && backoff >= Duration::from_millis(800) {
                        tracing::error!("queue unavailable; burst worker gives up");
                        summary.gave_up = true;
                        break;
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
        summary
    }

    /// Runs one taken job and settles it with the queue.
    async fn handle(&self, stop: &CancellationToken, raw: &str, job: Option<Job>, summary: &mut WorkerSummary) {
        let Some(job) = job else {
            tracing::error!("a queued payload is not a job; dead-lettered");
            self.settle(stop, || self.queue.dead_letter_raw(&self.id, raw)).await;
            summary.dead += 1;
            return;
        };
        if job.attempts >= self.queue.settings().max_attempts {
            tracing::error!(job.id = %job.id, attempts = job.attempts, "job abandoned by dying workers too often; dead-lettered");
            self.settle(stop, || self.queue.dead_letter(&self.id, raw, job.clone(), "worker died while running it"))
                .await;
            summary.dead += 1;
            return;
        }
        self.busy.store(true, Ordering::Relaxed);
        let _ = self.queue.heartbeat(&self.id, "busy").await;
        let span = tracing::info_span!(
            names::PROCESS_JOB,
            otel.name = format!("process {}", self.queue.name()).as_str(),
            otel.kind = "consumer",
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
            messaging.system = "redis",
            messaging.operation.name = "process",
            messaging.destination.name = self.queue.name(),
            messaging.message.id = job.id.as_str(),
            { names::JOB_KIND } = job.kind.as_str(),
            { names::JOB_ATTEMPTS } = i64::from(job.attempts),
            { names::SITE_IDENTIFIER } = job.args.site.as_str(),
            { names::AGGREGATION_START } = job.args.start.as_str(),
            { names::AGGREGATION_END } = job.args.end.as_str(),
        );
        // The enqueuer's context from the payload becomes the parent (a remote one), so the job's
        // spans continue its trace. Starting the span right away (`context()`) pins that parent:
        // left to start lazily, it came out as a new root when a child span started it first.
        if span.set_parent(super::extract_trace_context(&job)).is_ok() {
            let _started = span.context();
        }
        let mut sink = std::io::sink();
        let run = aggregate::run_job(&self.store, &job, &mut sink).instrument(span.clone());
        // Boxed, not pinned on the stack: `drop(run)` below must really end the job (its connection,
        // its open transaction) before it is put back on the queue; a dropped `Pin<&mut _>` left
        // the job alive until the end of this function.
        let mut run = Box::pin(run);
        let outcome = tokio::select! {
            result = &mut run => Some(result),
            () = async { stop.cancelled().await; tokio::time::sleep(self.grace).await } => None,
        };
        match outcome {
            None => {
                tracing::warn!(job.id = %job.id, "stopping: job outlived the grace period; put back on the queue");
                drop(run);
                self.settle(stop, || self.queue.requeue(&self.id, raw)).await;
            }
            Some(Ok(counts)) => {
                tracing::info!(
                    job.id = %job.id, kind = job.kind.as_str(), site = %job.args.site,
                    "Completed: {} records created, {} updated, {} pageviews processed",
                    counts.created, counts.updated, counts.processed
                );
                self.settle(stop, || self.queue.ack(&self.id, raw, &job)).await;
                summary.succeeded += 1;
            }
            Some(Err(JobError::SiteNotFound(site))) => {
                // Deleted since it was queued: nothing left to count, nothing to retry.
                tracing::info!(job.id = %job.id, %site, "site no longer exists; job dropped");
                self.settle(stop, || self.queue.ack(&self.id, raw, &job)).await;
                summary.succeeded += 1;
            }
            Some(Err(err)) => {
                let message = format!("{:#}", anyhow::Error::from(err));
                aggregate::record_error(&span, &std::io::Error::other(message.clone()));
                let dead = self.settle(stop, || self.queue.fail(&self.id, raw, &job, &message)).await;
                if dead == Some(true) {
                    tracing::error!(job.id = %job.id, error = %message, "job failed its last attempt; dead-lettered");
                    summary.dead += 1;
                } else {
                    tracing::warn!(job.id = %job.id, error = %message, "job failed; retry scheduled");
                    summary.retried += 1;
                }
            }
        }
        self.busy.store(false, Ordering::Relaxed);
    }

    /// Retries a queue update until Redis takes it or the worker stops. If it stops first, the job
    /// stays in the processing list and the sweep re-queues it once this worker's heartbeat expires.
    async fn settle<T, F, Fut>(&self, stop: &CancellationToken, mut update: F) -> Option<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, QueueError>>,
    {
        let mut backoff = Duration::from_millis(100);
        let mut failing_since: Option<std::time::Instant> = None;
        loop {
            match update().await {
                Ok(value) => {
                    log_redis_back(&mut failing_since);
                    return Some(value);
                }
                Err(err) => {
                    failing_since.get_or_insert_with(std::time::Instant::now);
                    tracing::warn!(error = %anyhow::Error::from(err), "could not update the queue; retrying");
                    tokio::select! {
                        () = stop.cancelled() => return None,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Logs the end of an outage that began at `down_since`, once.
fn log_redis_back(down_since: &mut Option<std::time::Instant>) {
    if let Some(since) = down_since.take() {
        tracing::info!(after = ?since.elapsed(), "Redis is back; resuming");
    }
}
