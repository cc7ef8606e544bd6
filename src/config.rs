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
    /// Tracking requests one client IP (as `TRUSTED_PROXIES` resolves it) may make: `N/sec`, `N/min` or
    /// `N/hour`, e.g. `600/min`; beyond it the answer is 429 with `Retry-After`. Unset: no limit.
    #[arg(long, env = "SQUIRREL_TRACK_RATE_LIMIT", value_parser = RateLimit::parse)]
    pub track_rate_limit: Option<RateLimit>,
}

/// A request rate: `requests` per `period`, bursts of up to `requests` allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub requests: std::num::NonZeroU32,
    pub period: Duration,
}

impl RateLimit {
    pub fn parse(value: &str) -> Result<RateLimit, String> {
        let error = || {
            format!(
                "SQUIRREL_TRACK_RATE_LIMIT must be N/sec, N/min or N/hour with N >= 1 (e.g. 600/min), got '{value}'"
            )
        };
        let (count, unit) = value.trim().split_once('/').ok_or_else(error)?;
        let requests = count.trim().parse::<std::num::NonZeroU32>().map_err(|_| error())?;
        let period = match unit.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Duration::from_secs(1),
            "m" | "min" | "minute" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            _ => return Err(error()),
        };
        Ok(RateLimit { requests, period })
    }
}

/// The tracking write path.
#[derive(Debug, Clone, clap::Args)]
pub struct IngestConfig {
    /// Most pageviews committed in one transaction (group commit).
    #[arg(long, env = "SQUIRREL_INGEST_BATCH", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
    /// Writer threads committing batches at once (default: 1; see `Dialect::ingest_writers`).
    #[arg(long, env = "SQUIRREL_INGEST_WRITERS", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub writers: Option<u32>,
    /// Pageviews waiting for a writer before new requests wait too (backpressure).
    #[arg(long, env = "SQUIRREL_INGEST_QUEUE", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub queue: u32,
    /// Microseconds a writer waits for a small batch to grow while requests keep coming (0: never;
    /// default: 50 on SQLite, 0 on PostgreSQL, see `Dialect::ingest_linger`).
    #[arg(long, env = "SQUIRREL_INGEST_LINGER_US", value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub linger_us: Option<u64>,
    /// Milliseconds a request may wait for room in a full queue before it gets 503 + Retry-After.
    #[arg(long, env = "SQUIRREL_INGEST_WAIT_MS", default_value_t = 2000)]
    pub wait_ms: u64,
    /// Distinct User-Agent strings whose parse result is cached.
    #[arg(long, env = "SQUIRREL_UA_CACHE", default_value_t = 4096)]
    pub ua_cache: usize,
    /// A MaxMind-format country database (`.mmdb`: GeoLite2-Country, ip-location-db …): each pageview
    /// keeps the client's country code, never the IP. Unset: no countries.
    #[arg(long, env = "GEOIP_DB")]
    pub geoip_db: Option<std::path::PathBuf>,
}

/// Accounts, sessions, password-reset mail and the dashboard's origin. Read by `accounts` and the API's
/// CORS layer only.
#[derive(Debug, Clone, clap::Args)]
pub struct AccountsConfig {
    /// The dashboard's origin(s), comma-separated: CORS with credentials is allowed for exactly these,
    /// and reset links point at the first one when `PUBLIC_URL` is not set.
    #[arg(long, env = "FRONTEND_URL", default_value = "http://localhost:7777", value_parser = parse_origins)]
    pub frontend_url: Origins,
    /// Where this server is reached, e.g. `https://stats.example.com`; an `https` URL makes the session
    /// cookie `Secure`.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    /// `1`: the session cookie is `Secure` even when `PUBLIC_URL` is not https (TLS ends at a proxy).
    #[arg(long, env = "COOKIE_SECURE", default_value = "0", value_parser = parse_flag)]
    pub cookie_secure: bool,
    /// `smtp://USER:PASS@HOST:587` (STARTTLS), `smtps://…:465` (TLS) or `smtp://HOST:25` (plain, local
    /// relays only): password-reset mail goes out here.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// MailPace server token: password-reset mail goes out through MailPace's HTTP API (when no `SMTP_URL`).
    #[arg(long, env = "MAILPACE_API_KEY", hide_env_values = true)]
    pub mailpace_api_key: Option<String>,
    /// MailPace's send endpoint (tests point it at a local server).
    #[arg(long, env = "SQUIRREL_MAILPACE_URL", default_value = "https://app.mailpace.com/api/v1/send")]
    pub mailpace_url: String,
    /// The sender of password-reset mail.
    #[arg(long, env = "DEFAULT_FROM_EMAIL", default_value = "noreply@localhost")]
    pub default_from_email: String,
    /// Failed logins from one client IP within `SQUIRREL_LOGIN_WINDOW` before it gets 429.
    #[arg(long, env = "SQUIRREL_LOGIN_ATTEMPTS_PER_IP", default_value_t = 20)]
    pub login_attempts_per_ip: u32,
    /// Failed logins for one account within `SQUIRREL_LOGIN_WINDOW` before it gets 429.
    #[arg(long, env = "SQUIRREL_LOGIN_ATTEMPTS_PER_ACCOUNT", default_value_t = 10)]
    pub login_attempts_per_account: u32,
    /// Seconds a login-throttle window lasts.
    #[arg(long, env = "SQUIRREL_LOGIN_WINDOW", default_value_t = 900)]
    pub login_window_secs: u64,
}

impl AccountsConfig {
    /// Development defaults: the original dashboard's origin, no mailer (links are logged).
    pub fn for_tests() -> AccountsConfig {
        AccountsConfig {
            frontend_url: Origins(vec!["http://localhost:7777".into()]),
            public_url: None,
            cookie_secure: false,
            smtp_url: None,
            mailpace_api_key: None,
            mailpace_url: "https://app.mailpace.com/api/v1/send".into(),
            default_from_email: "noreply@localhost".into(),
            login_attempts_per_ip: 20,
            login_attempts_per_account: 10,
            login_window_secs: 900,
        }
    }

    /// Whether the session cookie carries `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.cookie_secure || self.public_url.as_deref().is_some_and(|url| url.trim().starts_with("https://"))
    }

    /// The origins the JSON API answers CORS with credentials for: every `FRONTEND_URL` origin, and
    /// `PUBLIC_URL`'s origin (a dashboard served by this server itself).
    pub fn api_origins(&self) -> Origins {
        let mut origins = self.frontend_url.clone();
        let public = self.public_url.as_deref().and_then(|url| url::Url::parse(url.trim()).ok());
        if let Some(origin) = public.map(|url| url.origin()).filter(url::Origin::is_tuple) {
            let origin = origin.ascii_serialization();
            if !origins.0.contains(&origin) {
                origins.0.push(origin);
            }
        }
        origins
    }

    /// The base of links in mail: `PUBLIC_URL` (this server serves the dashboard), else the first
    /// `FRONTEND_URL` origin (the original dashboard run on its own).
    pub fn link_base(&self) -> String {
        let base = self.public_url.clone().or_else(|| self.frontend_url.0.first().cloned()).unwrap_or_default();
        base.trim().trim_end_matches('/').to_string()
    }
}

/// Comma-separated origins (`scheme://host[:port]`), trailing slashes dropped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(pub Vec<String>);

fn parse_origins(value: &str) -> Result<Origins, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let origin = part.trim_end_matches('/');
            match url::Url::parse(origin) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() && url.path() == "/" => {
                    Ok(origin.to_string())
                }
                _ => Err(format!(
                    "FRONTEND_URL must be comma-separated origins like https://app.example.com (scheme, host, optional port; no path), '{part}' is not one"
                )),
            }
        })
        .collect::<Result<_, _>>()
        .map(Origins)
}

fn parse_flag(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        other => Err(format!("COOKIE_SECURE must be 1 or 0, got '{other}'")),
    }
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

/// How long raw pageviews are kept. Read by `jobs::retention` only.
#[derive(Debug, Clone, clap::Args)]
pub struct RetentionConfig {
    /// Days of raw pageviews to keep besides today (whole UTC days); older ones are deleted by
    /// `squirrel workers` every hour and by `squirrel prune`, after their hourly and daily rollups,
    /// sessions and daily breakdowns are brought up to date (those are kept). At least 8, so the
    /// backfills (7 days) and the raw-row reads of `today`/`yesterday` never reach a pruned day.
    /// Unset: keep forever.
    #[arg(long, env = "RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(8..=36_500))]
    pub retention_days: Option<u32>,
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
    #[command(flatten)]
    pub accounts: AccountsConfig,
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
                track_rate_limit: None,
            },
            ingest: IngestConfig {
                batch: 512,
                writers: None,
                linger_us: None,
                queue: 8192,
                wait_ms: 2000,
                ua_cache: 1024,
                geoip_db: None,
            },
            accounts: AccountsConfig::for_tests(),
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
    fn frontend_origins_are_comma_separated_and_checked() {
        let origins = parse_origins("https://app.example.com/, http://localhost:7777").expect("valid");
        assert_eq!(origins.0, ["https://app.example.com", "http://localhost:7777"]);
        let err = parse_origins("https://app.example.com/dashboard").unwrap_err();
        assert!(err.starts_with("FRONTEND_URL must be"), "{err}");
        assert!(parse_origins("").expect("empty is fine").0.is_empty());
    }

    #[test]
    fn reset_links_point_at_the_public_url_else_the_frontend() {
        let mut config = AccountsConfig::for_tests();
        assert_eq!(config.link_base(), "http://localhost:7777");
        config.public_url = Some("https://stats.example.com/".into());
        assert_eq!(config.link_base(), "https://stats.example.com");
    }

    #[test]
    fn the_api_answers_cors_for_the_frontend_and_the_public_url() {
        let mut config = AccountsConfig::for_tests();
        assert_eq!(config.api_origins().0, ["http://localhost:7777"]);
        config.public_url = Some("https://Stats.Example.com/squirrel/".into());
        assert_eq!(config.api_origins().0, ["http://localhost:7777", "https://stats.example.com"]);
        config.public_url = Some("http://localhost:7777".into());
        assert_eq!(config.api_origins().0, ["http://localhost:7777"], "no duplicate");
        config.public_url = Some("not a url".into());
        assert_eq!(config.api_origins().0, ["http://localhost:7777"]);
    }

    #[test]
    fn cookies_are_secure_behind_https_or_when_asked() {
        let mut config = AccountsConfig::for_tests();
        assert!(!config.secure_cookies());
        config.public_url = Some("https://stats.example.com".into());
        assert!(config.secure_cookies());
        config.public_url = None;
        config.cookie_secure = parse_flag("1").unwrap();
        assert!(config.secure_cookies());
        assert!(parse_flag("maybe").unwrap_err().contains("COOKIE_SECURE"));
    }

    #[test]
    fn track_rate_limits_name_a_count_and_a_period() {
        let limit = RateLimit::parse(" 600/min ").expect("valid");
        assert_eq!((limit.requests.get(), limit.period), (600, Duration::from_secs(60)));
        assert_eq!(RateLimit::parse("5/sec").unwrap().period, Duration::from_secs(1));
        assert_eq!(RateLimit::parse("1000/hour").unwrap().period, Duration::from_secs(3600));
        for bad in ["600", "0/min", "ten/min", "5/day", "-1/sec"] {
            let err = RateLimit::parse(bad).unwrap_err();
            assert!(err.starts_with("SQUIRREL_TRACK_RATE_LIMIT must be"), "{bad}: {err}");
        }
    }

    #[test]
    fn ipv4_mapped_client_addresses_match_ipv4_proxies() {
        let proxies = TrustedProxies::parse("127.0.0.1").unwrap();
        assert!(proxies.contains("::ffff:127.0.0.1".parse().unwrap()));
    }
}
