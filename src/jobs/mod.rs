//! Background jobs: exact hourly and daily rollups and sessions, queued in Redis and run by workers.
//!
//! Owns the aggregate commands ([`aggregate`]), the job payload ([`job`]), the Redis queue
//! ([`queue`]), the worker ([`worker`]), the four schedulers and their `queue-*` commands
//! ([`scheduler`]), the health monitor ([`monitor`]) and retention ([`retention`]). Not SQL
//! (`store::rollups`, `store::sessions`), not the CLI wiring (`cli`).
//!
//! Invariants: rollups are recomputed from raw rows, so any job may run any number of times, late
//! or concurrently, and the numbers stay exact; a queued job is always in exactly one Redis list
//! (pending, a worker's processing list, the retry schedule or the dead-letter list) until it is
//! done. Without `REDIS_URL`, [`Dispatch::Direct`] runs the same aggregation in-process.

pub mod aggregate;
pub mod commands;
pub mod job;
pub mod monitor;
pub mod queue;
pub mod retention;
pub mod scheduler;
pub mod worker;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use job::{Job, JobArgs, JobKind};
pub use queue::{Enqueued, Queue, QueueError, QueueSettings};
pub use worker::Worker;

use crate::config::RedisConfig;
use crate::store::{RollupCounts, Store, StoreError};

/// The one queue the original had, and our default.
pub const DEFAULT_QUEUE: &str = "aggregations";

/// Why a job or command failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("Site '{0}' not found")]
    SiteNotFound(String),
    #[error("invalid job arguments: {0}")]
    BadArgs(String),
    #[error("database")]
    Store(#[from] StoreError),
    #[error("queue")]
    Queue(#[from] QueueError),
}

/// Where `queue-*` commands send work: to Redis, or (no `REDIS_URL`) straight into the store.
#[derive(Clone, Debug)]
pub enum Dispatch {
    Direct(Store),
    Queue(Queue),
}

/// What [`Dispatch::submit`] did with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Ran in-process (`execution.mode=direct`).
    Ran(RollupCounts),
    /// Pushed to Redis (`execution.mode=enqueued`).
    Enqueued,
    /// The same site and window was already queued or running: nothing added.
    Duplicate,
}

impl Dispatch {
    /// `Queue` for `REDIS_URL`, `Direct` without one.
    ///
    /// # Errors
    /// A `REDIS_URL` that does not parse.
    pub fn from_config(store: &Store, config: &RedisConfig, queue: &str) -> Result<Dispatch, QueueError> {
        Ok(match &config.redis_url {
            Some(url) => {
                Dispatch::Queue(Queue::open(url, &config.redis_prefix, queue, QueueSettings::from_config(config))?)
            }
            None => Dispatch::Direct(store.clone()),
        })
    }

    /// The `execution.mode` attribute value.
    pub fn mode(&self) -> &'static str {
        match self {
            Dispatch::Direct(_) => "direct",
            Dispatch::Queue(_) => "enqueued",
        }
    }

    /// Runs or enqueues `job`. Call inside the `enqueue_*` span: its trace context goes into the
    /// payload, so the worker's spans continue this trace.
    pub async fn submit(&self, mut job: Job, out: &mut (dyn std::io::Write + Send)) -> Result<Submitted, JobError> {
        match self {
            Dispatch::Direct(store) => {
                let counts = aggregate::run_job(store, &job, out).await?;
                Ok(Submitted::Ran(counts))
            }
            Dispatch::Queue(queue) => {
                inject_trace_context(&mut job);
                Ok(match queue.enqueue(&job).await? {
                    Enqueued::Added => Submitted::Enqueued,
                    Enqueued::Duplicate => Submitted::Duplicate,
                })
            }
        }
    }
}

/// Writes the current span's W3C context into the job. The global propagator is used when one is
/// installed (telemetry's job); otherwise W3C trace context, the format the payload promises. With no
/// OpenTelemetry layer at all the span has no context and the fields stay `None`.
fn inject_trace_context(job: &mut Job) {
    let context = tracing::Span::current().context();
    let mut carrier = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.inject_context(&context, &mut carrier));
    if !carrier.contains_key("traceparent") {
        TraceContextPropagator::new().inject_context(&context, &mut carrier);
    }
    job.traceparent = carrier.remove("traceparent");
    job.tracestate = carrier.remove("tracestate").filter(|s| !s.is_empty());
}

/// The trace context a job carries, to become the parent of the worker's span.
pub(crate) fn extract_trace_context(job: &Job) -> opentelemetry::Context {
    let mut carrier = std::collections::HashMap::new();
    if let Some(parent) = &job.traceparent {
        carrier.insert("traceparent".to_string(), parent.clone());
    }
    if let Some(state) = &job.tracestate {
        carrier.insert("tracestate".to_string(), state.clone());
    }
    let extracted = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&carrier));
    if extracted.span().span_context().is_valid() { extracted } else { TraceContextPropagator::new().extract(&carrier) }
}
