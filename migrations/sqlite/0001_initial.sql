-- Squirrel Stats schema, SQLite flavour. Kept in step with ../postgres/0001_initial.sql by the
-- `migrations_define_the_same_tables_on_both_backends` test. Times are BIGINT epoch milliseconds (UTC),
-- booleans are 0/1 INTEGER: the two types both backends read the same way through sqlx::Any.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    is_active     INTEGER NOT NULL DEFAULT 1,
    created_at    BIGINT  NOT NULL,
    last_login    BIGINT
);
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

CREATE TABLE sites (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    uuid       TEXT    NOT NULL UNIQUE,
    user_id    BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    identifier TEXT    NOT NULL UNIQUE,
    created_at BIGINT  NOT NULL,
    updated_at BIGINT  NOT NULL
);
CREATE INDEX sites_user_created ON sites (user_id, created_at);

CREATE TABLE pageviews (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id          BIGINT  NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    created_at       BIGINT  NOT NULL,
    url              TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    referrer         TEXT    NOT NULL DEFAULT '',
    referrer_domain  TEXT    NOT NULL DEFAULT '',
    utm_source       TEXT    NOT NULL DEFAULT '',
    utm_medium       TEXT    NOT NULL DEFAULT '',
    utm_campaign     TEXT    NOT NULL DEFAULT '',
    utm_term         TEXT    NOT NULL DEFAULT '',
    utm_content      TEXT    NOT NULL DEFAULT '',
    browser          TEXT    NOT NULL DEFAULT '',
    browser_version  TEXT    NOT NULL DEFAULT '',
    os               TEXT    NOT NULL DEFAULT '',
    device_type      TEXT    NOT NULL DEFAULT 'unknown',
    country          TEXT    NOT NULL DEFAULT '',
    is_bot           INTEGER NOT NULL DEFAULT 0,
    visitor_id       BIGINT  NOT NULL,
    visitor_id_prev  BIGINT,
    session_id       BIGINT
);
CREATE INDEX pageviews_site_time ON pageviews (site_id, created_at);

CREATE TABLE sessions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id          BIGINT  NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    visitor_id       BIGINT  NOT NULL,
    started_at       BIGINT  NOT NULL,
    last_seen_at     BIGINT  NOT NULL,
    pageview_count   BIGINT  NOT NULL DEFAULT 0,
    is_bounce        INTEGER NOT NULL DEFAULT 1,
    duration_ms      BIGINT  NOT NULL DEFAULT 0,
    entry_page       TEXT    NOT NULL DEFAULT '',
    exit_page        TEXT    NOT NULL DEFAULT '',
    referrer         TEXT    NOT NULL DEFAULT '',
    referrer_domain  TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX sessions_site_time ON sessions (site_id, started_at);

CREATE TABLE hourly_stats (
    site_id              BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    hour_bucket          BIGINT NOT NULL,
    pageview_count       BIGINT NOT NULL DEFAULT 0,
    unique_session_count BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (site_id, hour_bucket)
);
CREATE INDEX hourly_stats_bucket ON hourly_stats (hour_bucket);

CREATE TABLE daily_stats (
    site_id              BIGINT NOT NULL REFERENCES sites (id) ON DELETE CASCADE,
    day_bucket           BIGINT NOT NULL,
    pageview_count       BIGINT NOT NULL DEFAULT 0,
    unique_session_count BIGINT NOT NULL DEFAULT 0,
    created_at           BIGINT NOT NULL,
    updated_at           BIGINT NOT NULL,
    PRIMARY KEY (site_id, day_bucket)
);
CREATE INDEX daily_stats_bucket ON daily_stats (day_bucket);

-- One random salt per UTC day for visitor hashing; only today's and yesterday's are kept.
CREATE TABLE visitor_salts (
    day  BIGINT PRIMARY KEY,
    salt TEXT   NOT NULL
);
