//! Span and attribute names of the original's catalogue (SPEC §5.3), kept exact so existing Axiom
//! queries keep working. Code refers to these constants, never to string literals.

pub const TRACK_PAGEVIEW: &str = "track_pageview";
/// The root span of one group commit; its INSERT child links to every request it stored.
pub const INGEST_BATCH: &str = "ingest_batch";
pub const BATCH_SIZE: &str = "batch.size";
/// The one span `squirrel telemetry-check` sends.
pub const TELEMETRY_CHECK: &str = "telemetry_check";

// Semantic-convention keys (HTTP, database, errors), taken from the conventions crate so they
// cannot drift from what backends expect.
pub use opentelemetry_semantic_conventions::attribute::{
    CLIENT_ADDRESS, ERROR_TYPE, EXCEPTION_MESSAGE, EXCEPTION_TYPE, HTTP_REQUEST_METHOD, HTTP_RESPONSE_STATUS_CODE,
    HTTP_ROUTE, NETWORK_PROTOCOL_VERSION, SERVER_ADDRESS, SERVER_PORT, URL_FULL, URL_PATH, URL_SCHEME,
    USER_AGENT_ORIGINAL,
};
pub use opentelemetry_semantic_conventions::attribute::{
    DB_COLLECTION_NAME, DB_OPERATION_NAME, DB_QUERY_TEXT, DB_SYSTEM_NAME,
};

pub const PAGEVIEW_SITE_IDENTIFIER: &str = "pageview.site_identifier";
pub const PAGEVIEW_HOSTNAME: &str = "pageview.hostname";
pub const PAGEVIEW_PATH: &str = "pageview.path";
pub const PAGEVIEW_METHOD: &str = "pageview.method";
pub const PAGEVIEW_SITE_FOUND: &str = "pageview.site_found";
pub const PAGEVIEW_DEVICE_TYPE: &str = "pageview.device_type";
pub const PAGEVIEW_BROWSER: &str = "pageview.browser";
pub const PAGEVIEW_OS: &str = "pageview.os";
pub const PAGEVIEW_CREATED: &str = "pageview.created";
pub const PAGEVIEW_ERROR: &str = "pageview.error";
pub const PAGEVIEW_ERROR_MESSAGE: &str = "pageview.error_message";

// Background jobs (issue 4): the command, enqueue and health-check spans of SPEC §4 / §5.3, and the
// worker's own spans. Per-site keys (`site.<identifier>.missing_hours`) are built by the functions below.
pub const AGGREGATE_HOURLY_STATS_COMMAND: &str = "aggregate_hourly_stats_command";
pub const AGGREGATE_DAILY_STATS_COMMAND: &str = "aggregate_daily_stats_command";
pub const QUEUE_CURRENT_HOUR_COMMAND: &str = "queue_current_hour_command";
pub const ENQUEUE_HOURLY_AGGREGATION: &str = "enqueue_hourly_aggregation";
pub const QUEUE_CURRENT_DAY_COMMAND: &str = "queue_current_day_command";
pub const ENQUEUE_DAILY_AGGREGATION: &str = "enqueue_daily_aggregation";
pub const QUEUE_BACKFILL_MISSING_HOURS_COMMAND: &str = "queue_backfill_missing_hours_command";
pub const ENQUEUE_BACKFILL_HOURLY_AGGREGATION: &str = "enqueue_backfill_hourly_aggregation";
pub const QUEUE_BACKFILL_MISSING_DAYS_COMMAND: &str = "queue_backfill_missing_days_command";
pub const ENQUEUE_BACKFILL_DAILY_AGGREGATION: &str = "enqueue_backfill_daily_aggregation";
pub const QUEUE_HEALTH_CHECK: &str = "queue_health_check";
/// `squirrel prune` and the hourly retention run of `squirrel workers` (`RETENTION_DAYS`).
pub const PRUNE_COMMAND: &str = "prune_command";
pub const PRUNE_RETENTION_DAYS: &str = "prune.retention_days";
pub const PRUNE_CUTOFF: &str = "prune.cutoff";
pub const PRUNE_DRY_RUN: &str = "prune.dry_run";
pub const PRUNE_SITES_COUNT: &str = "prune.sites_count";
pub const PRUNE_PAGEVIEWS: &str = "prune.pageviews";
/// Emitted once when a worker starts; `redis_url` has any password masked (the original leaked it).
pub const RQ_WORKER: &str = "rq_worker";
/// One job run by a worker: a CONSUMER span whose parent is the enqueuing span (W3C context from
/// the payload).
pub const PROCESS_JOB: &str = "process_job";

pub const COMMAND_HOURS_TO_PROCESS: &str = "command.hours_to_process";
pub const COMMAND_DAYS_TO_PROCESS: &str = "command.days_to_process";
pub const COMMAND_START_STR: &str = "command.start_str";
pub const COMMAND_END_STR: &str = "command.end_str";
pub const COMMAND_SITE_IDENTIFIER: &str = "command.site_identifier";
pub const COMMAND_TOTAL_CREATED: &str = "command.total_created";
pub const COMMAND_TOTAL_UPDATED: &str = "command.total_updated";
pub const COMMAND_TOTAL_PROCESSED: &str = "command.total_processed";
pub const COMMAND_HOUR_START: &str = "command.hour_start";
pub const COMMAND_HOUR_END: &str = "command.hour_end";
pub const COMMAND_SITES_COUNT: &str = "command.sites_count";
pub const COMMAND_DAY_START: &str = "command.day_start";
pub const COMMAND_DAY_END: &str = "command.day_end";
pub const COMMAND_START_WINDOW: &str = "command.start_window";
pub const COMMAND_END_WINDOW: &str = "command.end_window";
pub const COMMAND_DAYS_BACK: &str = "command.days_back";
pub const COMMAND_TOTAL_MISSING_HOURS: &str = "command.total_missing_hours";
pub const COMMAND_DAYS_TO_CHECK: &str = "command.days_to_check";
pub const COMMAND_START_DATE: &str = "command.start_date";
pub const COMMAND_END_DATE: &str = "command.end_date";
pub const COMMAND_TOTAL_QUEUED: &str = "command.total_queued";
pub const SITE_IDENTIFIER: &str = "site.identifier";
pub const AGGREGATION_START: &str = "aggregation.start";
pub const AGGREGATION_END: &str = "aggregation.end";
pub const AGGREGATION_DAYS_COUNT: &str = "aggregation.days_count";
/// `enqueued` or `direct`.
pub const EXECUTION_MODE: &str = "execution.mode";
/// Ours: `true` when the same site and window was already queued, so nothing was added.
pub const JOB_DEDUPLICATED: &str = "job.deduplicated";
pub const JOB_ID: &str = "job.id";
pub const JOB_KIND: &str = "job.kind";
pub const JOB_ATTEMPTS: &str = "job.attempts";
pub const QUEUE: &str = "queue";
pub const REDIS_URL: &str = "redis_url";

pub const QUEUE_NAME: &str = "queue.name";
pub const MONITOR_TYPE: &str = "monitor.type";
pub const QUEUE_ERROR: &str = "queue.error";
pub const QUEUE_STATUS: &str = "queue.status";
pub const QUEUE_LENGTH: &str = "queue.length";
pub const QUEUE_FAILED_JOBS: &str = "queue.failed_jobs";
pub const QUEUE_STARTED_JOBS: &str = "queue.started_jobs";
pub const QUEUE_DEFERRED_JOBS: &str = "queue.deferred_jobs";
pub const QUEUE_TOTAL_JOBS: &str = "queue.total_jobs";
pub const QUEUE_ALERT: &str = "queue.alert";
pub const QUEUE_ALERT_THRESHOLD: &str = "queue.alert_threshold";
pub const QUEUE_WARNING: &str = "queue.warning";
pub const QUEUE_WARNING_THRESHOLD: &str = "queue.warning_threshold";
pub const WORKERS_TOTAL: &str = "workers.total";
pub const WORKERS_ACTIVE: &str = "workers.active";
pub const WORKERS_IDLE: &str = "workers.idle";
pub const ALERT_TYPE: &str = "alert.type";
pub const ALERT_SEVERITY: &str = "alert.severity";

/// `site.<identifier>.missing_hours`
pub fn site_missing_hours(identifier: &str) -> String {
    format!("site.{identifier}.missing_hours")
}

/// `site.<identifier>.missing_days`
pub fn site_missing_days(identifier: &str) -> String {
    format!("site.{identifier}.missing_days")
}
