#!/usr/bin/env bash
# JSON API latency for Squirrel Stats: chart, stats and sites on one site holding ROWS pageviews
# spread over the last year, with its rollups computed, on SQLite and/or PostgreSQL. Sequential
# requests over loopback (curl), p50/p95/max per endpoint. Prints figures only; not a test.
#
#   bench/api.sh [--sqlite | --pg | --both] [--no-build]
#
# Environment: ROWS [1000000] (the issue's case is 10000000: budget ~10 min of prefill and rollups per
# million rows on 2 cores), REQUESTS per endpoint [200], PG_URL [postgres://postgres@127.0.0.1:5432],
# SQUIRREL_BIN (skip the build), BENCH_TMPDIR [/tmp].
set -uo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROWS=${ROWS:-1000000}
REQUESTS=${REQUESTS:-200}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
backends=(sqlite)
build=1
for arg in "$@"; do
  case $arg in
    --sqlite) backends=(sqlite) ;;
    --pg) backends=(pg) ;;
    --both) backends=(sqlite pg) ;;
    --no-build) build=0 ;;
    *) echo "usage: bench/api.sh [--sqlite|--pg|--both] [--no-build]" >&2; exit 2 ;;
  esac
done
BIN=${SQUIRREL_BIN:-$REPO/target/release/squirrel}
if [ -z "${SQUIRREL_BIN:-}" ] && [ $build = 1 ]; then (cd "$REPO" && cargo build --release -q) || exit 1; fi
WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/squirrel-api-bench.XXXXXX")
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

sql() { # backend, statement → rows
  case $1 in
    sqlite) sqlite3 -batch "$WORK/db.sqlite" "$2" ;;
    pg) psql "$DB_URL" -v ON_ERROR_STOP=1 -qAtX -c "$2" ;;
  esac
}

# The same data shape as bench/ingest.sh's pre-fill (paths, referrers, UTMs, browsers, countries,
# 1 in 20 a bot, ~3 pageviews per visitor), spread evenly over the last 365 days.
prefill() {
  local backend=$1 site=$2 rows=$3 now span=31536000000
  now=$(date +%s%3N)
  local cols="site_id, created_at, url, path, referrer, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, country, is_bot, visitor_id"
  local select="$site, ($now - $span) + (i * $span) / $rows,
      'https://example.com/p' || (i % 200), '/p' || (i % 200),
      CASE i % 5 WHEN 0 THEN 'https://www.google.com/' WHEN 1 THEN 'https://news.ycombinator.com/' ELSE '' END,
      CASE i % 5 WHEN 0 THEN 'www.google.com' WHEN 1 THEN 'news.ycombinator.com' ELSE '' END,
      CASE WHEN i % 7 = 0 THEN 'newsletter' ELSE '' END, CASE WHEN i % 7 = 0 THEN 'email' ELSE '' END,
      CASE WHEN i % 7 = 0 THEN 'campaign-' || (i % 12) ELSE '' END, '', '',
      CASE i % 4 WHEN 0 THEN 'Chrome' WHEN 1 THEN 'Safari' WHEN 2 THEN 'Firefox' ELSE 'Edge' END, '1',
      CASE i % 3 WHEN 0 THEN 'Windows' WHEN 1 THEN 'iOS' ELSE 'Android' END,
      CASE i % 3 WHEN 0 THEN 'desktop' WHEN 1 THEN 'mobile' ELSE 'tablet' END,
      CASE i % 6 WHEN 0 THEN 'US' WHEN 1 THEN 'DE' WHEN 2 THEN 'FR' WHEN 3 THEN 'GB' ELSE '' END,
      CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END, (i / 3) * 2654435761 + 1"
  case $backend in
    sqlite) sqlite3 -batch -bail "$WORK/db.sqlite" >/dev/null <<SQL
PRAGMA journal_mode = DELETE; PRAGMA synchronous = OFF; BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $rows - 1)
INSERT INTO pageviews ($cols) SELECT $select FROM n;
COMMIT; PRAGMA journal_mode = WAL;
SQL
    ;;
    pg) psql "$DB_URL" -v ON_ERROR_STOP=1 -qAtX >/dev/null <<SQL
SET session_replication_role = replica;
INSERT INTO pageviews ($cols) SELECT $select FROM generate_series(0::bigint, $rows - 1) AS g(i);
RESET session_replication_role; VACUUM ANALYZE;
SQL
    ;;
  esac
}

# p50 p95 max (ms) of REQUESTS sequential GETs of $1 with cookie jar $2.
measure() {
  local url=$1 jar=$2
  for _ in $(seq "$REQUESTS"); do
    curl -s -o /dev/null -b "$jar" -w '%{time_total}\n' "$url"
  done | awk '{print $1 * 1000}' | sort -n | awk '{a[NR]=$1} END {printf "p50 %7.2f ms   p95 %7.2f ms   max %7.2f ms\n", a[int(NR*0.5)], a[int(NR*0.95)], a[NR]}'
}

for backend in "${backends[@]}"; do
  case $backend in
    sqlite) export DATABASE_URL="sqlite://$WORK/db.sqlite" ;;
    pg)
      name="squirrel_api_bench_$$"
      psql "$PG_URL/postgres" -qAtX -c "DROP DATABASE IF EXISTS $name" -c "CREATE DATABASE $name" >/dev/null || exit 1
      DB_URL="$PG_URL/$name"; export DATABASE_URL=$DB_URL ;;
  esac
  echo "== $backend, $ROWS pageviews over the last 365 days"
  "$BIN" create-user --email bench@example.com --password 'bench password' >/dev/null 2>&1 || exit 1
  "$BIN" create-site --owner bench@example.com --name Bench >/dev/null 2>&1 || exit 1
  site=$(sql "$backend" "SELECT id FROM sites")
  uuid=$(sql "$backend" "SELECT uuid FROM sites")
  start=$(date +%s)
  prefill "$backend" "$site" "$ROWS" || exit 1
  echo "prefill: $(( $(date +%s) - start )) s"
  start=$(date +%s)
  SQUIRREL_LOG=error "$BIN" aggregate-hourly-stats --hours 8808 >/dev/null || exit 1
  SQUIRREL_LOG=error "$BIN" aggregate-daily-stats --days 367 >/dev/null || exit 1
  echo "rollups (hourly + sessions, daily) for the year: $(( $(date +%s) - start )) s"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  SQUIRREL_ADDR=127.0.0.1:$port SQUIRREL_LOG=warn "$BIN" serve >"$WORK/serve.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/up" >/dev/null && break; sleep 0.1; done
  jar=$WORK/cookies
  curl -s -c "$jar" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"bench password"}' "http://127.0.0.1:$port/api/v1/auth/login" >/dev/null
  base="http://127.0.0.1:$port/api/v1"
  # Warm-up: the first statistics request of a cold year hands the per-day breakdown rows to a
  # background refresh and reads raw rows meanwhile. Poll until the month and the one before answer
  # from day rows (three fast answers in a row), so the figures below are the steady state.
  start=$(date +%s); fast=0
  while [ $fast -lt 3 ] && [ $(( $(date +%s) - start )) -lt 300 ]; do
    t=$(curl -s -o /dev/null -b "$jar" -w '%{time_total}' "$base/stats?site_id=$uuid&range=last_30_days&breakdown=pages")
    if awk -v t="$t" 'BEGIN { exit !(t < 0.05) }'; then fast=$((fast + 1)); else fast=0; sleep 1; fi
    curl -s -o /dev/null -b "$jar" "$base/stats?site_id=$uuid&range=last_7_days"
  done
  echo "warm-up (background refresh of the daily breakdown rows): $(( $(date +%s) - start )) s"
  for query in \
    "chart?site_id=$uuid&range=today&timezone_offset=300" \
    "chart?site_id=$uuid&range=yesterday&timezone_offset=-330" \
    "chart?site_id=$uuid&range=last_30_days&compare=previous" \
    "chart?site_id=$uuid&range=last_month" \
    "stats?site_id=$uuid&range=last_7_days" \
    "stats?site_id=$uuid&range=last_30_days" \
    "stats?site_id=$uuid&range=last_30_days&breakdown=pages" \
    "stats?site_id=$uuid&range=last_30_days&breakdown=referrers" \
    "stats?site_id=$uuid&range=today&breakdown=browsers" \
    "realtime?site_id=$uuid" \
    "sites/"; do
    printf '%-58s %s\n' "${query/site_id=$uuid&/}" "$(measure "$base/$query" "$jar")"
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null; SERVER=""
  [ "$backend" = pg ] && psql "$PG_URL/postgres" -qAtX -c "DROP DATABASE $name WITH (FORCE)" >/dev/null
  rm -f "$WORK"/db.sqlite*
done
