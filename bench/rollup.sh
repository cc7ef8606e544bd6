#!/usr/bin/env bash
# Rollup benchmark for Squirrel Stats: how fast raw pageviews are folded into hourly rows + sessions
# (`aggregate-hourly-stats`) and daily rows (`aggregate-daily-stats`), on fresh SQLite and/or
# PostgreSQL databases pre-filled with ROWS pageviews spread over a year. Prints figures and checks
# the numbers are exact; it is not a test (a missed target does not change the exit status).
# See bench/README.md.
#
#   bench/rollup.sh [--sqlite | --pg | --both] [--no-build] [-h|--help]
#
# Environment (defaults in brackets):
#   ROWS          space-separated row counts to measure ["1000000 10000000"]
#   SQUIRREL_BIN  use this binary instead of building target/release/squirrel
#   PG_URL        PostgreSQL server, no database [postgres://postgres@127.0.0.1:5432]
#   BENCH_TMPDIR  where the SQLite files go (~1.7 GB for 10 M rows) [$TMPDIR or /tmp]
# Exit status: 0 when every run finished and its numbers checked out, 1 otherwise, 2 on usage.

set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
ROWS=${ROWS:-"1000000 10000000"}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}
backends="sqlite pg"
build=1
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --sqlite) backends="sqlite" ;;
    --pg | --postgres) backends="pg" ;;
    --both) backends="sqlite pg" ;;
    --no-build) build=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
for n in $ROWS; do [[ $n =~ ^[0-9]+$ && $n -gt 0 ]] || { echo "ROWS must be whole numbers > 0, got '$n'" >&2; exit 2; }; done

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
failed=0
TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/squirrel-rollup.XXXXXX")
declare -a PG_DBS=()
cleanup() {
  for db in "${PG_DBS[@]}"; do psql "$PG_URL/postgres" -qAtX -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

for tool in sqlite3 psql; do
  command -v "$tool" >/dev/null || { apt-get update -qq && apt-get install -y -qq sqlite3 postgresql-client >/dev/null; break; }
done

if [[ -n ${SQUIRREL_BIN:-} ]]; then
  BIN=$SQUIRREL_BIN
else
  BIN=$REPO/target/release/squirrel
  if ((build)); then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release -q) || { log "FAILED: build"; exit 1; }
  fi
fi
[[ -x $BIN ]] || { log "FAILED: no binary at $BIN"; exit 1; }

# The year measured: 2025-01-01T00:00:00Z … 2026-01-01T00:00:00Z (fixed, so runs are comparable).
START_MS=1735689600000
SPAN_MS=31536000000

# ROWS pageviews of site $2: evenly spread over the year, oldest first; ~200 paths, referrers,
# browsers; 1 in 20 a bot; 3 consecutive pageviews per visitor (a 3-page session, seconds apart at
# 10 M rows a year, minutes apart at 1 M). The same data as bench/ingest.sh's pre-fill.
prefill() {
  local backend=$1 site=$2 rows=$3
  local cols="site_id, created_at, url, path, referrer, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, country, is_bot, visitor_id, visitor_id_prev"
  local select="$site,
      $START_MS + (i * $SPAN_MS) / $rows,
      'https://example.com' || (CASE WHEN i % 200 = 0 THEN '/' ELSE '/section-' || (i % 20) || '/page-' || (i % 200) END),
      CASE WHEN i % 200 = 0 THEN '/' ELSE '/section-' || (i % 20) || '/page-' || (i % 200) END,
      CASE i % 5 WHEN 0 THEN 'https://www.google.com/' WHEN 1 THEN 'https://news.ycombinator.com/item?id=' || (i % 9973) ELSE '' END,
      CASE i % 5 WHEN 0 THEN 'www.google.com' WHEN 1 THEN 'news.ycombinator.com' ELSE '' END,
      '', '', '', '', '',
      CASE i % 4 WHEN 0 THEN 'Chrome' WHEN 1 THEN 'Safari' WHEN 2 THEN 'Firefox' ELSE 'Edge' END,
      '124.0', CASE i % 3 WHEN 0 THEN 'Windows' WHEN 1 THEN 'iOS' ELSE 'Android' END,
      CASE i % 3 WHEN 0 THEN 'desktop' WHEN 1 THEN 'mobile' ELSE 'tablet' END, '',
      CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END,
      (i / 3) * 2654435761 + 1, NULL"
  case $backend in
    sqlite)
      sqlite3 -batch -bail "$DB_FILE" <<SQL >/dev/null
PRAGMA journal_mode = DELETE;
PRAGMA synchronous = OFF;
PRAGMA cache_size = -1048576;
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $rows - 1)
INSERT INTO pageviews ($cols) SELECT $select FROM n;
COMMIT;
PRAGMA journal_mode = WAL;
SQL
      ;;
    pg)
      psql "$DB_URL" -v ON_ERROR_STOP=1 -qAtX >/dev/null <<SQL
SET session_replication_role = replica;
INSERT INTO pageviews ($cols) SELECT $select FROM generate_series(0::bigint, $rows - 1) AS g(i);
RESET session_replication_role;
VACUUM ANALYZE pageviews;
CHECKPOINT;
SQL
      ;;
  esac
}

# One SQL query against the run's database, one value out.
q() {
  case $1 in
    sqlite) sqlite3 -batch "$DB_FILE" "$2" ;;
    pg) psql "$DB_URL" -qAtX -c "$2" ;;
  esac
}

now_ms() { date +%s%3N; }

declare -a RESULTS=()
n=0
for backend in $backends; do
  for rows in $ROWS; do
    n=$((n + 1))
    case $backend in
      sqlite)
        DB_FILE=$TMP/rollup-$n.db
        DB_URL=sqlite://$DB_FILE
        ;;
      pg)
        db=squirrel_rollup_$$_$n
        psql "$PG_URL/postgres" -qAtX -c "CREATE DATABASE $db" >/dev/null || { log "FAILED: create $db"; failed=1; continue; }
        PG_DBS+=("$db")
        DB_URL=$PG_URL/$db
        ;;
    esac
    export DATABASE_URL=$DB_URL SQUIRREL_LOG=warn
    unset REDIS_URL
    "$BIN" create-user --email bench@example.com --password benchmark-pw >/dev/null || { log "FAILED: create-user"; failed=1; continue; }
    "$BIN" create-site --owner bench@example.com --name bench >/dev/null || { log "FAILED: create-site"; failed=1; continue; }
    site=$(q "$backend" "SELECT id FROM sites LIMIT 1")
    log "$backend: pre-filling $rows pageviews"
    t0=$(now_ms)
    prefill "$backend" "$site" "$rows" || { log "FAILED: pre-fill"; failed=1; continue; }
    sync
    fill_s=$(awk "BEGIN{printf \"%.1f\", ($(now_ms) - $t0) / 1000}")

    log "$backend $rows: aggregate-hourly-stats (hourly rows + sessions) over the year"
    t0=$(now_ms)
    hourly_out=$("$BIN" aggregate-hourly-stats --start 2025-01-01 --end 2026-01-01) || { log "FAILED: hourly"; failed=1; }
    hourly_ms=$(($(now_ms) - t0))
    log "$backend $rows: aggregate-daily-stats over the year"
    t0=$(now_ms)
    daily_out=$("$BIN" aggregate-daily-stats --start 2025-01-01 --end 2025-12-31) || { log "FAILED: daily"; failed=1; }
    daily_ms=$(($(now_ms) - t0))
    log "$backend $rows: both again (idempotent rerun: nothing changes)"
    t0=$(now_ms)
    rerun_out=$("$BIN" aggregate-hourly-stats --start 2025-01-01 --end 2026-01-01 && "$BIN" aggregate-daily-stats --start 2025-01-01 --end 2025-12-31)
    rerun_ms=$(($(now_ms) - t0))

    # Exactness: every non-bot pageview counted once per grain, every one in a session, bots in none.
    humans=$(q "$backend" "SELECT COUNT(*) FROM pageviews WHERE is_bot = 0")
    hourly_sum=$(q "$backend" "SELECT COALESCE(SUM(pageview_count), 0) FROM hourly_stats")
    daily_sum=$(q "$backend" "SELECT COALESCE(SUM(pageview_count), 0) FROM daily_stats")
    session_sum=$(q "$backend" "SELECT COALESCE(SUM(pageview_count), 0) FROM sessions")
    sessions=$(q "$backend" "SELECT COUNT(*) FROM sessions")
    # A session's pageviews are its visitor's between its first and last (the pre-fill has no
    # midnight links, so no session holds a later day's visitor id); the index only serves this check.
    q "$backend" "CREATE INDEX bench_sessions_visitor ON sessions (site_id, visitor_id, started_at)" >/dev/null
    unassigned=$(q "$backend" "SELECT COUNT(*) FROM pageviews p WHERE p.is_bot = 0 AND NOT EXISTS (SELECT 1 FROM sessions s WHERE s.site_id = p.site_id AND s.visitor_id = p.visitor_id AND s.started_at <= p.created_at AND s.last_seen_at >= p.created_at)")
    check=ok
    [[ $hourly_sum == "$humans" && $daily_sum == "$humans" && $session_sum == "$humans" && $unassigned == 0 ]] || check=MISMATCH
    grep -q "Completed: 0 records created, 0 updated, 0 pageviews processed" <<<"$rerun_out" || check="$check,rerun-changed"
    [[ $check == ok ]] || failed=1
    total_ms=$((hourly_ms + daily_ms))
    RESULTS+=("$(printf '%-10s %9s %9s %12s %10s %10s %12s %10s %9s %-8s' \
      "$backend" "$rows" "$fill_s" \
      "$(awk "BEGIN{printf \"%.2f\", $hourly_ms / 1000}")" \
      "$(awk "BEGIN{printf \"%.2f\", $daily_ms / 1000}")" \
      "$(awk "BEGIN{printf \"%.2f\", $total_ms / 1000}")" \
      "$(awk "BEGIN{printf \"%.0f\", $rows / ($total_ms / 1000)}")" \
      "$(awk "BEGIN{printf \"%.2f\", $rerun_ms / 1000}")" \
      "$sessions" "$check")")
    log "$(tail -n 1 <<<"$hourly_out") (hourly); $(tail -n 1 <<<"$daily_out") (daily)"
    [[ $backend == sqlite ]] && rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm"
  done
done

printf '\n%-10s %9s %9s %12s %10s %10s %12s %10s %9s %-8s\n' backend rows fill_s hourly+sess_s daily_s total_s pageviews/s rerun_s sessions exact
for line in "${RESULTS[@]}"; do echo "$line"; done
echo
echo "pageviews/s = rows / (hourly+sessions + daily seconds); target >= 1000000 on SQLite"
exit $failed
