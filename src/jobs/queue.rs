//! The Redis queue: a list per queue, a processing list per worker, a retry schedule, a dead-letter
//! list, and the keys that keep several processes from doing the same work twice.
//!
//! Keys, all under the configured prefix (`squirrel:` by default; tests use their own):
//! - `queue:<q>` pending jobs (JSON). Enqueue pushes on the left, workers take from the right.
//! - `processing:<q>:<worker>` the job a worker holds. `BLMOVE` moves it there atomically, so a job
//!   is always in exactly one list; if the worker dies, [`Queue::sweep`] moves it back
//!   (at-least-once delivery; the aggregation is idempotent, so a rerun changes nothing).
//! - `worker:<q>:<worker>` heartbeat (`idle`/`busy`) with a TTL; `workers:<q>` the set of worker ids.
//! - `delayed:<q>` failed jobs waiting for their retry (sorted set, score = due time in ms).
//! - `dead:<q>` jobs that failed every attempt, newest first, capped.
//! - `dedup:<kind>:<site>:<start>:<end>` held from enqueue until the job ends: the same site and
//!   window is never queued twice at once, whichever process enqueues it.
//! - `schedule:<name>` a scheduler's lock for one period, so each schedule fires once per period
//!   across every `workers` process.
//!
//! Multi-key changes run as Lua scripts, so each is atomic. Every command runs inside a CLIENT span
//! (`db.system.name=redis`, `db.operation.name=<COMMAND>`); the URL, which may hold a password,
//! never appears in a span or a log line.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{Client, FromRedisValue, ToRedisArgs};
use tracing::Instrument;

use super::job::Job;
use crate::config::RedisConfig;

/// Why a queue operation failed. `Unavailable` is worth retrying later.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("Redis unavailable")]
    Unavailable(#[source] redis::RedisError),
    #[error("Redis error")]
    Redis(#[source] redis::RedisError),
    #[error("REDIS_URL is not valid: {0}")]
    BadUrl(String),
}

impl From<redis::RedisError> for QueueError {
    fn from(err: redis::RedisError) -> Self {
        if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() || err.is_connection_refusal() {
            QueueError::Unavailable(err)
        } else {
            QueueError::Redis(err)
        }
    }
}

/// Timings of the queue. Defaults suit production; tests shorten some.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// How long a worker's heartbeat lives; a worker silent for longer is presumed dead.
    pub heartbeat_ttl: Duration,
    /// Safety net on dedup keys, in case a process dies between enqueue and the job's end.
    pub dedup_ttl: Duration,
    /// Runs of a failing job before it is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles per attempt.
    pub retry_delay: Duration,
    /// Dead-letter entries kept.
    pub dead_cap: usize,
}

impl QueueSettings {
    pub fn from_config(config: &RedisConfig) -> QueueSettings {
        QueueSettings {
            heartbeat_ttl: Duration::from_secs(15),
            dedup_ttl: Duration::from_secs(6 * 3600),
            max_attempts: config.job_attempts.max(1),
            retry_delay: Duration::from_secs(config.job_retry_delay_secs),
            dead_cap: 1000,
        }
    }
}

/// Whether an enqueue added a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Added,
    /// The same site and window is already queued or running.
    Duplicate,
}

/// Sizes the health monitor reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub length: i64,
    pub failed: i64,
    pub deferred: i64,
    pub started: i64,
    pub workers_total: i64,
    pub workers_busy: i64,
    pub workers_idle: i64,
}

/// A job dead-lettered after its last attempt, with the reason.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DeadJob {
    pub job: Job,
    pub error: String,
    pub failed_at: i64,
}

/// A handle on one named queue. Cheap to clone; the connection reconnects by itself.
#[derive(Clone)]
pub struct Queue {
    client: Client,
    conn: ConnectionManager,
    prefix: String,
    name: String,
    settings: QueueSettings,
    server_address: String,
    server_port: i64,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: only the address is shown.
        f.debug_struct("Queue").field("server", &self.server_address).field("name", &self.name).finish()
    }
}

static ENQUEUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[3]) then \
           redis.call('LPUSH', KEYS[2], ARGV[2]) return 1 end \
         return 0",
    )
});

static ACK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local n = redis.call('LREM', KEYS[1], 1, ARGV[1]) \
         if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end \
         return n",
    )
});

static RETRY: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new("redis.call('LREM', KEYS[1], 1, ARGV[1]) redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2]) return 1")
});

static DEAD: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "redis.call('LREM', KEYS[1], 1, ARGV[1]) \
         redis.call('LPUSH', KEYS[2], ARGV[2]) \
         redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]) - 1) \
         if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end \
         return 1",
    )
});

/// Back on the queue: the held job of a worker that stopped on purpose.
static REQUEUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local n = redis.call('LREM', KEYS[1], 1, ARGV[1]) if n > 0 then redis.call('RPUSH', KEYS[2], ARGV[1]) end return n",
    )
});

static PROMOTE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100) \
         for _, job in ipairs(due) do redis.call('ZREM', KEYS[1], job) redis.call('LPUSH', KEYS[2], job) end \
         return #due",
    )
});

/// Jobs held by workers whose heartbeat expired go back to the front of the queue, their
/// `attempts` raised by one (so a job that kills its worker every time ends dead-lettered).
static SWEEP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local moved = 0 \
         for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do \
           if redis.call('EXISTS', ARGV[1] .. id) == 0 then \
             local held = ARGV[2] .. id \
             while true do \
               local raw = redis.call('RPOP', held) \
               if not raw then break end \
               local ok, job = pcall(cjson.decode, raw) \
               if ok and type(job) == 'table' then job.attempts = (tonumber(job.attempts) or 0) + 1 raw = cjson.encode(job) end \
               redis.call('RPUSH', KEYS[2], raw) \
               moved = moved + 1 \
             end \
             redis.call('SREM', KEYS[1], id) \
           end \
         end \
         return moved",
    )
});

static STATS: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local started, busy, idle = 0, 0, 0 \
         for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do \
           local state = redis.call('GET', ARGV[1] .. id) \
           if state == 'busy' then busy = busy + 1 elseif state then idle = idle + 1 end \
           started = started + redis.call('LLEN', ARGV[2] .. id) \
         end \
         return {redis.call('LLEN', KEYS[2]), redis.call('LLEN', KEYS[3]), redis.call('ZCARD', KEYS[4]), started, busy + idle, busy, idle}",
    )
});

impl Queue {
    /// A handle on queue `name`. Connects lazily: a Redis that is down now is no error here, only
    /// at the first command (and the connection comes back by itself when Redis does).
    ///
    /// # Errors
    /// `BadUrl` when the URL does not parse.
    pub fn open(url: &str, prefix: &str, name: &str, settings: QueueSettings) -> Result<Queue, QueueError> {
        let client = Client::open(url).map_err(|err| QueueError::BadUrl(err.to_string()))?;
        let (server_address, server_port) = match client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => (host.clone(), i64::from(*port)),
            redis::ConnectionAddr::TcpTls { host, port, .. } => (host.clone(), i64::from(*port)),
            _ => ("localhost".to_string(), 0),
        };
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(QueueError::from)?;
        Ok(Queue {
            client,
            conn,
            prefix: prefix.to_string(),
            name: name.to_string(),
            settings,
            server_address,
            server_port,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }

    fn key(&self, kind: &str) -> String {
        format!("{}{kind}:{}", self.prefix, self.name)
    }

    fn queue_key(&self) -> String {
        self.key("queue")
    }

    fn processing_key(&self, worker: &str) -> String {
        format!("{}:{worker}", self.key("processing"))
    }

    fn heartbeat_key(&self, worker: &str) -> String {
        format!("{}:{worker}", self.key("worker"))
    }

    fn dedup_key(&self, job: &Job) -> String {
        format!("{}dedup:{}", self.prefix, job.dedup_key())
    }

    /// The CLIENT span of one Redis command, per the OpenTelemetry database conventions.
    fn span(&self, operation: &'static str, what: &'static str) -> tracing::Span {
        let name = if what.is_empty() { operation.to_string() } else { format!("{operation} {what}") };
        tracing::info_span!(
            "redis",
            otel.name = %name,
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            db.system.name = "redis",
            db.operation.name = operation,
            server.address = %self.server_address,
            server.port = self.server_port,
            error.type = tracing::field::Empty,
        )
    }

    /// Runs one command in its span on `conn`.
    async fn traced<T: FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
        operation: &'static str,
        cmd: &redis::Cmd,
    ) -> Result<T, QueueError> {
        let span = self.span(operation, "");
        let mut result = cmd.query_async::<T>(conn).instrument(span.clone()).await;
        if result.as_ref().is_err_and(is_stale_connection) {
            // The connection died with a Redis restart; the manager has reconnected since.
            result = cmd.query_async::<T>(conn).instrument(span.clone()).await;
        }
        mark(&span, result.as_ref().err());
        Ok(result?)
    }

    /// Runs one Lua script in its span (`EVALSHA <script>`).
    async fn script<T: FromRedisValue>(
        &self,
        name: &'static str,
        script: &redis::Script,
        keys: &[&str],
        args: &[&dyn ToRedisArgsDyn],
    ) -> Result<T, QueueError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg.to_args());
        }
        let span = self.span("EVALSHA", name);
        let mut conn = self.conn.clone();
        let mut result = invocation.invoke_async::<T>(&mut conn).instrument(span.clone()).await;
        if result.as_ref().is_err_and(is_stale_connection) {
            // Every script is safe to run again: a second enqueue finds its dedup key, a second ack
            // or retry finds nothing left to move.
            result = invocation.invoke_async::<T>(&mut conn).instrument(span.clone()).await;
        }
        mark(&span, result.as_ref().err());
        Ok(result?)
    }

    /// Adds `job` unless the same site and window is already queued or running.
    pub async fn enqueue(&self, job: &Job) -> Result<Enqueued, QueueError> {
        let payload = serde_json::to_string(job).expect("a Job always serializes");
        let ttl = self.settings.dedup_ttl.as_millis().to_string();
        let added: i64 = self
            .script("enqueue", &ENQUEUE, &[&self.dedup_key(job), &self.queue_key()], &[&job.id, &payload, &ttl])
            .await?;
        Ok(if added == 1 { Enqueued::Added } else { Enqueued::Duplicate })
    }

    /// Waits up to `timeout` for a job and moves it into `worker`'s processing list. `None` when
    /// none came. Uses `conn`, which must be a connection of its own: a blocking command holds the
    /// connection it runs on.
    pub async fn take(
        &self,
        conn: &mut ConnectionManager,
        worker: &str,
        timeout: Duration,
    ) -> Result<Option<(String, Option<Job>)>, QueueError> {
        let mut cmd = redis::cmd("BLMOVE");
        cmd.arg(self.queue_key()).arg(self.processing_key(worker)).arg("RIGHT").arg("LEFT").arg(timeout.as_secs_f64());
        let raw: Option<String> = self.traced(conn, "BLMOVE", &cmd).await?;
        Ok(raw.map(|raw| {
            let job = serde_json::from_str::<Job>(&raw).ok();
            (raw, job)
        }))
    }

    /// Takes a job without waiting (`LMOVE`); for burst mode and tests.
    pub async fn try_take(&self, worker: &str) -> Result<Option<(String, Option<Job>)>, QueueError> {
        let mut cmd = redis::cmd("LMOVE");
        cmd.arg(self.queue_key()).arg(self.processing_key(worker)).arg("RIGHT").arg("LEFT");
        let mut conn = self.conn.clone();
        let raw: Option<String> = self.traced(&mut conn, "LMOVE", &cmd).await?;
        Ok(raw.map(|raw| {
            let job = serde_json::from_str::<Job>(&raw).ok();
            (raw, job)
        }))
    }

    /// A connection for [`Queue::take`]: its response timeout outlasts the blocking wait.
    pub async fn blocking_connection(&self, block: Duration) -> Result<ConnectionManager, QueueError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(block + Duration::from_secs(5)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        Ok(ConnectionManager::new_lazy_with_config(self.client.clone(), config)?)
    }

    /// The job `raw` (as taken by `worker`) is done: drop it and free its site+window.
    pub async fn ack(&self, worker: &str, raw: &str, job: &Job) -> Result<(), QueueError> {
        let _: i64 =
            self.script("ack", &ACK, &[&self.processing_key(worker), &self.dedup_key(job)], &[&raw, &job.id]).await?;
        Ok(())
    }

    /// The job failed: retry later with exponential backoff, or dead-letter it after its last
    /// attempt. Returns `true` when it was dead-lettered.
    pub async fn fail(&self, worker: &str, raw: &str, job: &Job, error: &str) -> Result<bool, QueueError> {
        let mut next = job.clone();
        next.attempts += 1;
        if next.attempts >= self.settings.max_attempts {
            self.dead_letter(worker, raw, next, error).await?;
            return Ok(true);
        }
        let backoff = self.settings.retry_delay.saturating_mul(1 << (next.attempts - 1).min(16));
        let due = crate::store::now_ms() + i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX / 2);
        let payload = serde_json::to_string(&next).expect("a Job always serializes");
        let _: i64 = self
            .script("retry", &RETRY, &[&self.processing_key(worker), &self.key("delayed")], &[&raw, &payload, &due])
            .await?;
        Ok(false)
    }

    /// Moves a job to the dead-letter list (also for payloads that are not jobs at all).
    pub async fn dead_letter(&self, worker: &str, raw: &str, job: Job, error: &str) -> Result<(), QueueError> {
        let dedup = self.dedup_key(&job);
        let entry = DeadJob { job, error: error.to_string(), failed_at: crate::store::now_ms() };
        let payload = serde_json::to_string(&entry).expect("a DeadJob always serializes");
        let cap = self.settings.dead_cap;
        let _: i64 = self
            .script(
                "dead_letter",
                &DEAD,
                &[&self.processing_key(worker), &self.key("dead"), &dedup],
                &[&raw, &payload, &entry.job.id, &cap],
            )
            .await?;
        Ok(())
    }

    /// Drops a payload that is not a job: it goes to the dead-letter list as it was.
    pub async fn dead_letter_raw(&self, worker: &str, raw: &str) -> Result<(), QueueError> {
        let dedup = format!("{}dedup:-", self.prefix);
        let cap = self.settings.dead_cap;
        let _: i64 = self
            .script(
                "dead_letter",
                &DEAD,
                &[&self.processing_key(worker), &self.key("dead"), &dedup],
                &[&raw, &raw, &"-", &cap],
            )
            .await?;
        Ok(())
    }

    /// Puts a held job back at the front of the queue (a worker stopping before it could finish).
    pub async fn requeue(&self, worker: &str, raw: &str) -> Result<(), QueueError> {
        let _: i64 =
            self.script("requeue", &REQUEUE, &[&self.processing_key(worker), &self.queue_key()], &[&raw]).await?;
        Ok(())
    }

    /// Moves retries that are due back onto the queue; returns how many.
    pub async fn promote_due(&self) -> Result<i64, QueueError> {
        let now = crate::store::now_ms();
        self.script("promote", &PROMOTE, &[&self.key("delayed"), &self.queue_key()], &[&now]).await
    }

    /// Re-queues the jobs of workers whose heartbeat has expired; returns how many.
    pub async fn sweep(&self) -> Result<i64, QueueError> {
        let heartbeat_prefix = format!("{}:", self.key("worker"));
        let processing_prefix = format!("{}:", self.key("processing"));
        self.script(
            "sweep",
            &SWEEP,
            &[&self.key("workers"), &self.queue_key()],
            &[&heartbeat_prefix, &processing_prefix],
        )
        .await
    }

    /// Registers `worker` as alive with `state` (`idle` or `busy`) for one heartbeat TTL.
    pub async fn heartbeat(&self, worker: &str, state: &str) -> Result<(), QueueError> {
        let ttl = u64::try_from(self.settings.heartbeat_ttl.as_millis()).unwrap_or(u64::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.heartbeat_key(worker))
            .arg(state)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .cmd("SADD")
            .arg(self.key("workers"))
            .arg(worker)
            .ignore();
        let span = self.span("MULTI", "heartbeat");
        let mut conn = self.conn.clone();
        let result = pipe.query_async::<()>(&mut conn).instrument(span.clone()).await;
        mark(&span, result.as_ref().err());
        Ok(result?)
    }

    /// Unregisters a worker that stops cleanly (its processing list must be empty by then).
    pub async fn leave(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let mut del = redis::cmd("DEL");
        del.arg(self.heartbeat_key(worker));
        let _: i64 = self.traced(&mut conn, "DEL", &del).await?;
        let mut srem = redis::cmd("SREM");
        srem.arg(self.key("workers")).arg(worker);
        let _: i64 = self.traced(&mut conn, "SREM", &srem).await?;
        Ok(())
    }

    /// Queue sizes and worker counts for the health monitor.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let heartbeat_prefix = format!("{}:", self.key("worker"));
        let processing_prefix = format!("{}:", self.key("processing"));
        let v: Vec<i64> = self
            .script(
                "stats",
                &STATS,
                &[&self.key("workers"), &self.queue_key(), &self.key("dead"), &self.key("delayed")],
                &[&heartbeat_prefix, &processing_prefix],
            )
            .await?;
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Ok(QueueStats {
            length: at(0),
            failed: at(1),
            deferred: at(2),
            started: at(3),
            workers_total: at(4),
            workers_busy: at(5),
            workers_idle: at(6),
        })
    }

    /// The dead-letter list, newest first.
    pub async fn dead_jobs(&self) -> Result<Vec<DeadJob>, QueueError> {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.key("dead")).arg(0).arg(-1);
        let mut conn = self.conn.clone();
        let raw: Vec<String> = self.traced(&mut conn, "LRANGE", &cmd).await?;
        Ok(raw.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    /// The pending jobs, next first.
    pub async fn pending(&self) -> Result<Vec<Job>, QueueError> {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.queue_key()).arg(0).arg(-1);
        let mut conn = self.conn.clone();
        let raw: Vec<String> = self.traced(&mut conn, "LRANGE", &cmd).await?;
        Ok(raw.iter().rev().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    /// Takes the lock of schedule `name` for `period` unless another process holds it. `true`
    /// means: this process fires the schedule now.
    pub async fn try_lock_schedule(&self, name: &str, holder: &str, period: Duration) -> Result<bool, QueueError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(format!("{}schedule:{name}", self.prefix))
            .arg(holder)
            .arg("NX")
            .arg("PX")
            .arg(u64::try_from(period.as_millis()).unwrap_or(u64::MAX).max(1));
        let mut conn = self.conn.clone();
        let set: Option<String> = self.traced(&mut conn, "SET", &cmd).await?;
        Ok(set.is_some())
    }

    /// Liveness probe.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = self.traced(&mut conn, "PING", &redis::cmd("PING")).await?;
        Ok(())
    }
}

/// A connection that broke under a command (Redis restarted): worth one more try on a fresh one.
fn is_stale_connection(err: &redis::RedisError) -> bool {
    err.is_connection_dropped() || err.is_io_error()
}

/// Marks a span failed when its command failed.
fn mark(span: &tracing::Span, err: Option<&redis::RedisError>) {
    if let Some(err) = err {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", if err.is_io_error() || err.is_connection_refusal() { "io" } else { "redis" });
    }
}

/// Script arguments of mixed types behind one reference type.
trait ToRedisArgsDyn: Sync {
    fn to_args(&self) -> Vec<Vec<u8>>;
}

impl<T: ToRedisArgs + Sync> ToRedisArgsDyn for T {
    fn to_args(&self) -> Vec<Vec<u8>> {
        self.to_redis_args()
    }
}
