//! Configuration: every setting declared once, with its flag, environment variable, default and doc.
//!
//! Layers, lowest first: defaults, a `.env` file (loaded by `main` before parsing, never overriding the
//! real environment), the environment, command-line flags. Each area has its own struct and a module
//! receives only its own. A malformed value stops the program at start with a message that names the
//! variable and the expected form. Nothing here is global: tests build a [`Config`] by hand.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

/// Where the data lives. Read by `store` only.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreConfig {
    /// `sqlite://PATH` (created on first run) or `postgres://USER@HOST/DB`; the scheme picks the backend.
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://squirrel.db", value_parser = parse_database_url)]
    pub database_url: String,
    /// SQLite durability: `normal` survives a process crash (WAL), `full` also survives power loss.
    #[arg(long, env = "SQUIRREL_SQLITE_SYNC", default_value = "normal", value_enum)]
    pub sqlite_sync: SqliteSync,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SqliteSync {
    Normal,
    Full,
}

/// The HTTP server.
#[derive(Debug, Clone, clap::Args)]
pub struct HttpConfig {
    /// Address to listen on.
    #[arg(long = "addr", env = "SQUIRREL_ADDR", default_value = "127.0.0.1:8000", value_parser = parse_addr)]
    pub addr: SocketAddr,
    /// Comma-separated IPs/CIDRs of reverse proxies whose `X-Forwarded-For` is believed.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "", value_parser = TrustedProxies::parse)]
    pub trusted_proxies: TrustedProxies,
    /// Seconds to let in-flight requests and pending writes finish after SIGTERM/SIGINT.
    #[arg(long, env = "SQUIRREL_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// Signs and encrypts cookies; generated once and kept in the database when not set.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
}

/// The tracking write path.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestConfig {
    /// Most pageviews committed in one transaction (group commit).
    #[arg(long, env = "SQUIRREL_INGEST_BATCH", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Pageviews waiting for a writer before new requests wait too (backpressure).
    #[arg(long, env = "SQUIRREL_INGEST_QUEUE", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue: u32,
    /// Milliseconds a request may wait for room in a full queue before it gets 503 + Retry-After.
    #[arg(long, env = "SQUIRREL_INGEST_WAIT_MS", default_value_t = 2000)]
    pub wait_ms: u64,
    /// Distinct User-Agent strings whose parse result is cached.
    #[arg(long, env = "SQUIRREL_UA_CACHE", default_value_t = 4096)]
    pub ua_cache: usize,
}

/// Background jobs: the Redis queue. Read by `jobs` only.
#[derive(Debug, Clone, clap::Args)]
pub struct RedisConfig {
    /// `redis://[:PASSWORD@]HOST[:PORT][/DB]`. Unset: the `queue-*` commands run the aggregation in
    /// the same process (direct mode), and `worker`/`workers` refuse to start.
    #[arg(long, env = "REDIS_URL", hide_env_values = true, value_parser = parse_redis_url)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key, so several installations (or test runs) can share one Redis.
    #[arg(long, env = "SQUIRREL_REDIS_PREFIX", default_value = "squirrel:")]
    pub redis_prefix: String,
    /// Runs of a failing job before it goes to the dead-letter list.
    #[arg(long, env = "SQUIRREL_JOB_ATTEMPTS", default_value_t = 3)]
    pub job_attempts: u32,
    /// Seconds before a failed job's first retry; doubles with each further attempt.
    #[arg(long, env = "SQUIRREL_JOB_RETRY_DELAY", default_value_t = 10)]
    pub job_retry_delay_secs: u64,
}

impl RedisConfig {
    /// No Redis: direct mode.
    pub fn direct() -> RedisConfig {
        RedisConfig { redis_url: None, redis_prefix: "squirrel:".into(), job_attempts: 3, job_retry_delay_secs: 10 }
    }

    /// The URL with any password replaced by `***`, fit for logs and span attributes.
    pub fn masked_url(&self) -> String {
        self.redis_url.as_deref().map(mask_url_password).unwrap_or_default()
    }
}

/// `redis://user:secret@host/0` → `redis://user:***@host/0`.
pub fn mask_url_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "<unparsable URL>".to_string(),
    }
}

fn parse_redis_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if (value.starts_with("redis://") || value.starts_with("unix://")) && redis::Client::open(value).is_ok() {
        Ok(value.to_string())
    } else {
        Err(format!(
            "REDIS_URL must be redis://[:PASSWORD@]HOST[:PORT][/DB] (e.g. redis://127.0.0.1:6379/0), got '{}'",
            mask_url_password(value)
        ))
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub ingest: IngestConfig,
}

impl Config {
    /// Defaults for tests: an ephemeral port on loopback and the given database.
    pub fn for_tests(database_url: &str) -> Config {
        Config {
            store: StoreConfig { database_url: database_url.to_string(), sqlite_sync: SqliteSync::Normal },
            http: HttpConfig {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                trusted_proxies: TrustedProxies::default(),
                shutdown_grace_secs: 10,
                secret_key: None,
            },
            ingest: IngestConfig { batch: 512, queue: 8192, wait_ms: 2000, ua_cache: 1024 },
        }
    }
}

impl HttpConfig {
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

fn parse_database_url(value: &str) -> Result<String, String> {
    let value = value.trim();
    if crate::store::Dialect::from_url(value).is_some() {
        Ok(value.to_string())
    } else {
        Err(format!(
            "DATABASE_URL must be sqlite://PATH (e.g. sqlite://squirrel.db) or postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE, got '{value}'"
        ))
    }
}

fn parse_addr(value: &str) -> Result<SocketAddr, String> {
    value.trim().parse().map_err(|_| {
        format!("SQUIRREL_ADDR must be HOST:PORT with an IP host (e.g. 127.0.0.1:8000 or 0.0.0.0:8000), got '{value}'")
    })
}

/// The proxies allowed to tell us the client address. Empty: `X-Forwarded-For` is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn parse(value: &str) -> Result<TrustedProxies, String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>().or_else(|_| part.parse::<IpAddr>().map(IpNet::from)).map_err(|_| {
                    format!("TRUSTED_PROXIES must be comma-separated IPs or CIDRs (e.g. 10.0.0.1,192.168.0.0/16), '{part}' is neither")
                })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_accept_ips_and_cidrs_and_name_the_variable_when_wrong() {
        let proxies = TrustedProxies::parse(" 10.0.0.1, 192.168.0.0/16 ,::1").expect("valid list");
        assert!(proxies.contains("10.0.0.1".parse().unwrap()));
        assert!(proxies.contains("192.168.44.3".parse().unwrap()));
        assert!(proxies.contains("::1".parse().unwrap()));
        assert!(!proxies.contains("10.0.0.2".parse().unwrap()));
        assert!(TrustedProxies::parse("").expect("empty is fine").is_empty());
        let err = TrustedProxies::parse("10.0.0.1,bogus").unwrap_err();
        assert!(err.contains("TRUSTED_PROXIES") && err.contains("bogus"), "{err}");
    }

    #[test]
    fn database_url_accepts_sqlite_and_postgres_only() {
        assert!(parse_database_url("sqlite://squirrel.db").is_ok());
        assert!(parse_database_url("postgres://postgres@127.0.0.1/test").is_ok());
        assert!(parse_database_url("postgresql://x@y/z").is_ok());
        let err = parse_database_url("mysql://root@localhost/db").unwrap_err();
        assert!(err.starts_with("DATABASE_URL must be"), "{err}");
    }

    #[test]
    fn redis_urls_are_checked_and_never_shown_with_their_password() {
        assert!(parse_redis_url("redis://127.0.0.1:6379/0").is_ok());
        let err = parse_redis_url("http://:hunter2@example.com").unwrap_err();
        assert!(err.starts_with("REDIS_URL must be") && !err.contains("hunter2"), "{err}");
        assert_eq!(mask_url_password("redis://:hunter2@10.0.0.5:6379/0"), "redis://:***@10.0.0.5:6379/0");
        assert_eq!(mask_url_password("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }

    #[test]
    fn ipv4_mapped_client_addresses_match_ipv4_proxies() {
        let proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        assert!(proxies.contains("::ffff:127.0.0.1".parse().unwrap()));
    }
}
