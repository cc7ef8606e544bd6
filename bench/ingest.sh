#!/usr/bin/env bash
# Ingest benchmark for Squirrel Stats: GET /api/v1/pv under wrk, against an nginx fixed-200 ceiling,
# on fresh SQLite and/or PostgreSQL databases, empty and with ROWS pageviews already stored.
# Prints figures only; it is not a test (missed targets do not change the exit status).
# See bench/README.md.
#
#   bench/ingest.sh [--sqlite | --pg | --both] [--no-build | --rev REV] [-h|--help]
#
#   --no-build   reuse target/release/squirrel as it is (default: cargo build --release first)
#   --rev REV    benchmark a committed revision instead of the working tree: `git archive REV` is
#                built in ~/.cache/squirrel-bench (own target dir; the repo's target/ is untouched)
#
# Environment (defaults in brackets):
#   DURATION       seconds of load per target [20]
#   ROWS           pageviews pre-filled for the "stored before" runs; 0 skips those runs [10000000]
#   CONNECTIONS    wrk connections [32]          THREADS   wrk threads [2]
#   NGINX_WORKERS  nginx worker_processes [auto] (= cores, like squirrel's Tokio runtime)
#   WARMUP         seconds of load right after each squirrel start, reported apart as "cold start"
#                  and kept out of the main figures and row counts; 0 measures from the start [2]
#   TELEMETRY      1: also run each backend (empty database) with telemetry on — every span
#                  sampled, traces, metrics and logs exported over OTLP/HTTP to an nginx sink
#                  (bench/otlp_sink.nginx.conf)
#                  on loopback — right after the same run with it off, and report the difference;
#                  0: telemetry off only [1]
#   PAIRS          telemetry off/on pairs per backend, run alternately; the cost reported is the
#                  median of the pairs' (one 15 s pair can swing ±5 % on a shared 2-core machine) [3]
#   BASELINE       1: also measure bench/baseline (a bare durable-ack ingest server: the floor of what
#                  any server pays for a committed pageview, built with cargo on first use) on each
#                  backend right before squirrel, so a run's ratios can be read against what a
#                  minimal design reaches on the same machine; 0: skip it [1]
#   XFF            1: send X-Forwarded-For from TEST-NET ranges and start squirrel with
#                  TRUSTED_PROXIES=127.0.0.1 (many visitors, as behind a proxy); 0: all hits from
#                  127.0.0.1 [1]
#   SQUIRREL_BIN   use this binary instead of building target/release/squirrel
#   PG_URL         PostgreSQL server, no database [postgres://postgres@127.0.0.1:5432]
#   BENCH_TMPDIR   where the temp dir goes (~2 GB for a 10 M-row SQLite file) [$TMPDIR or /tmp]
#   SQUIRREL_*     any other squirrel setting (e.g. SQUIRREL_INGEST_BATCH) is passed through.
# Exit status: 0 when every target ran and was measured, 1 when something failed to run, 2 on usage.

set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)

DURATION=${DURATION:-20}
WARMUP=${WARMUP:-2}
ROWS=${ROWS:-10000000}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
XFF=${XFF:-1}
TELEMETRY=${TELEMETRY:-1}
BASELINE=${BASELINE:-1}
PAIRS=${PAIRS:-3}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432}
PG_URL=${PG_URL%/}

backends="sqlite pg"
build=1
rev=""
usage() { sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case $1 in
    --sqlite) backends="sqlite" ;;
    --pg | --postgres) backends="pg" ;;
    --both) backends="sqlite pg" ;;
    --no-build) build=0 ;;
    --rev)
      [[ $# -ge 2 ]] || { echo "--rev needs a revision" >&2; exit 2; }
      rev=$2
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
[[ $TELEMETRY == 0 || $TELEMETRY == 1 ]] || { echo "TELEMETRY must be 0 or 1, got '$TELEMETRY'" >&2; exit 2; }
[[ $BASELINE == 0 || $BASELINE == 1 ]] || { echo "BASELINE must be 0 or 1, got '$BASELINE'" >&2; exit 2; }
for v in DURATION WARMUP ROWS CONNECTIONS THREADS; do
  [[ ${!v} =~ ^[0-9]+$ ]] || { echo "$v must be a whole number, got '${!v}'" >&2; exit 2; }
done
((DURATION > 0 && CONNECTIONS > 0 && THREADS > 0)) || { echo "DURATION, CONNECTIONS and THREADS must be > 0" >&2; exit 2; }

# ---------------------------------------------------------------------------------------------------
# Bookkeeping, cleanup

T0=$(date +%s)
failed=0
TMP=""
declare -a PIDS=()      # processes we started and have not stopped yet
declare -a PG_DBS=()    # databases we created and have not dropped yet

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "FAILED: $*"; failed=1; }

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
# Runs "$@" in the background with stdout to $1 and stderr appended to $2, and waits for it, so that
# a signal interrupts at once (the EXIT trap then stops it) instead of after a 20 s wrk or a minute
# of pre-fill. (Redirecting the call itself would also redirect the trap's own messages.)
run_waited() {
  local out=$1 err=$2
  shift 2
  "$@" >"$out" 2>>"$err" &
  local p=$! rc
  PIDS+=("$p")
  wait "$p"
  rc=$?
  forget_pid "$p"
  return "$rc"
}

psql_admin() { psql "$PG_URL/postgres" -v ON_ERROR_STOP=1 -qAtX "$@"; }

cleanup() {
  local rc=$? p db
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do pkill -TERM -P "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  for db in "${PG_DBS[@]}"; do psql_admin -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1; done
  [[ -n $TMP && -d $TMP ]] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

# ---------------------------------------------------------------------------------------------------
# Prerequisites

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need+=(nginx-light)
command -v curl >/dev/null || need+=(curl)
[[ $backends == *sqlite* ]] && ! command -v sqlite3 >/dev/null && need+=(sqlite3)
[[ $backends == *pg* ]] && ! command -v psql >/dev/null && need+=(postgresql-client)
((TELEMETRY)) && ! command -v python3 >/dev/null && need+=(python3)
if ((${#need[@]})); then
  log "installing ${need[*]} with apt-get"
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2; then
    echo "could not install ${need[*]}; install them and run again" >&2
    exit 1
  fi
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if [[ $backends == *pg* ]] && ! psql_admin -c 'SELECT 1' >/dev/null; then
  echo "PostgreSQL is not reachable at $PG_URL (set PG_URL, or run with --sqlite)" >&2
  exit 1
fi

COMMIT=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -n $(git -C "$REPO" status --porcelain -- src migrations Cargo.toml Cargo.lock 2>/dev/null) ]] && COMMIT="$COMMIT+dirty"
if [[ -n ${SQUIRREL_BIN:-} ]]; then
  BIN=$SQUIRREL_BIN
  COMMIT="$COMMIT (SQUIRREL_BIN=$BIN)"
elif [[ -n $rev ]]; then
  sha=$(git -C "$REPO" rev-parse --verify --quiet "$rev^{commit}") || { echo "no such revision: $rev" >&2; exit 2; }
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/squirrel-bench
  src=$cache/src-${sha:0:12}
  if [[ ! -f $src/Cargo.toml ]]; then
    log "exporting $rev (${sha:0:12}) to $src"
    rm -rf "$src" && mkdir -p "$src" && git -C "$REPO" archive "$sha" | tar -x -C "$src" || { echo "git archive failed" >&2; exit 1; }
  fi
  log "building ${sha:0:12} (cargo build --release in $src, target dir $cache/target)"
  (cd "$src" && CARGO_TARGET_DIR=$cache/target cargo build --release --quiet --bin squirrel) || { echo "cargo build failed" >&2; exit 1; }
  BIN=$cache/target/release/squirrel
  COMMIT=$(git -C "$REPO" rev-parse --short "$sha")
elif ((build)); then
  log "building the release binary (cargo build --release)"
  (cd "$REPO" && cargo build --release --quiet --bin squirrel) || { echo "cargo build failed" >&2; exit 1; }
  BIN=$REPO/target/release/squirrel
else
  BIN=$REPO/target/release/squirrel
fi
[[ -x $BIN ]] || { echo "no squirrel binary at $BIN" >&2; exit 1; }
BASELINE_BIN=$BENCH_DIR/baseline/target/release/ingest-baseline
if ((BASELINE)); then
  log "building bench/baseline (cargo build --release; a no-op when up to date)"
  cargo build --release --quiet --manifest-path "$BENCH_DIR/baseline/Cargo.toml" || { echo "cargo build of bench/baseline failed" >&2; exit 1; }
fi

BUILD_SECS=$(($(date +%s) - T0))
TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/squirrel-bench.XXXXXX")
# Squirrel reads ./.env; run it from the temp dir so the repo's or caller's .env cannot leak in.
cd "$TMP" || exit 1

# Below Linux's ephemeral range (32768-60999): a port picked there can be taken, between the check
# and the bind, by an outgoing connection (wrk's, or the server's own to PostgreSQL), which once
# failed a run with "Address already in use". Neither listening nor in use by any socket.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    ss -Htan "sport = :$port" | grep -q . || { echo "$port"; return; }
  done
}

wait_http() { # url pid seconds
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# Stops a child with SIGTERM and waits up to $2 seconds; sets STOP_RC to its exit status (or
# "timeout", after which it is killed). Not for $(...): wait needs the parent shell.
STOP_RC=""
stop_pid() {
  local pid=$1 limit=$2 i
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < limit * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    forget_pid "$pid"
    STOP_RC=timeout
    return
  fi
  wait "$pid"
  STOP_RC=$?
  forget_pid "$pid"
}

# CPU accounting for the measured window, in clock ticks (USER_HZ): the whole machine's busy time,
# the processes under test (squirrel, postgres, nginx, by name), and waited-for children (wrk).
# "Other" = busy - those: other sessions' builds or tests on this machine disturb the figures.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8; exit }' /proc/stat; }
tested_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 ~ /^\((squirrel|postgres|nginx|ingest-baseline)\)$/ { s += $14 + $15 } END { print s + 0 }'; }
# Sets CHILD_TICKS (not for $(...): a subshell has its own, empty, children times).
child_ticks() {
  times >"$TMP/times"
  CHILD_TICKS=$(awk 'NR == 2 { for (i = 1; i <= NF; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } } END { printf "%d", s * 100 }' "$TMP/times")
}
# Sectors written to the machine's real disks (not loop/ram/zram) and their write-time field (ms
# spent writing), to spot heavy I/O (ours or another process's) during a measured window.
disk_writes() {
  local devs=() d
  for d in /sys/block/*; do [[ ${d##*/} =~ ^(loop|ram|zram) ]] || devs+=("${d##*/}"); done
  awk -v devs="${devs[*]}" 'BEGIN { n = split(devs, a, " "); for (i = 1; i <= n; i++) real[a[i]] = 1 }
    ($3 in real) { s += $10; t += $11 } END { printf "%d %d", s, t }' /proc/diskstats
}
cores() { awk -v t="$1" -v us="$2" 'BEGIN { printf "%.2f", (us > 0 ? t / 100 / (us / 1e6) : 0) }'; }

# Runs wrk against $1 (base URL) with the site identifier $2; parses the BENCH line into W_*.
run_wrk() {
  local url=$1 sid=$2 out=$3 line kv
  local xff_arg=""
  ((XFF)) && xff_arg=xff
  W_ok=0
  # shellcheck disable=SC2034 # some are only informational
  W_requests=0 W_duration_us=0 W_bytes=0 W_errors_connect=0 W_errors_read=0 W_errors_write=0 \
    W_errors_status=0 W_errors_timeout=0 W_p50_us=0 W_p90_us=0 W_p99_us=0 W_p999_us=0 W_max_us=0 W_mean_us=0 \
    W_busy=0 W_tested=0 W_wrk=0 W_other=0 W_disk_mb=0 W_disk_ms=0
  local b0 t0 c0 rc
  child_ticks
  b0=$(busy_ticks) t0=$(tested_ticks) c0=$CHILD_TICKS
  local d0
  d0=$(disk_writes)
  : >"$out"
  run_waited "$out" "$out" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s --latency \
    -s "$BENCH_DIR/ingest.lua" "$url" -- "$sid" $xff_arg
  rc=$?
  W_busy=$(($(busy_ticks) - b0)) W_tested=$(($(tested_ticks) - t0))
  local d1
  d1=$(disk_writes)
  W_disk_mb=$(((${d1% *} - ${d0% *}) / 2048)) W_disk_ms=$((${d1#* } - ${d0#* }))
  child_ticks
  W_wrk=$((CHILD_TICKS - c0))
  W_other=$((W_busy - W_tested - W_wrk))
  ((W_other < 0)) && W_other=0
  if ((rc != 0)); then
    fail "wrk against $url exited non-zero: $(tail -3 "$out")"
    return 1
  fi
  line=$(grep '^BENCH ' "$out" | tail -1)
  [[ -n $line ]] || { fail "wrk printed no BENCH line: $(tail -3 "$out")"; return 1; }
  for kv in ${line#BENCH }; do printf -v "W_${kv%%=*}" '%s' "${kv#*=}"; done
  W_ok=1
}

cpu_note() {
  printf 'CPU in cores: machine %s, tested processes %s, wrk %s, other %s' "$(cores "$W_busy" "$W_duration_us")" \
    "$(cores "$W_tested" "$W_duration_us")" "$(cores "$W_wrk" "$W_duration_us")" "$(cores "$W_other" "$W_duration_us")"
  printf '; disk writes %s MB (%s ms busy writing)' "$W_disk_mb" "$W_disk_ms"
}
# The last $2 lines of a squirrel log, colour codes removed.
log_tail() { sed 's/\x1b\[[0-9;]*m//g' "$1" | tail -n "$2"; }
# WARN and ERROR lines of a squirrel text log (colour codes removed).
warn_lines() { sed 's/\x1b\[[0-9;]*m//g' "$1" | grep -E '^[^ ]+ +(WARN|ERROR) '; }
fmt_ms() { awk -v us="$1" 'BEGIN { printf "%.2f", us / 1000 }'; }
# The latency tail of the last wrk run (W_*), as the details print it.
tail_note() { printf 'p90 %s ms, p99.9 %s ms, max %s ms' "$(fmt_ms "$W_p90_us")" "$(fmt_ms "$W_p999_us")" "$(fmt_ms "$W_max_us")"; }
rps_of() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.0f", (us > 0 ? n * 1e6 / us : 0) }'; }

# ---------------------------------------------------------------------------------------------------
# Results: one row per measured target, kept in parallel arrays.

declare -a R_NAME R_BEFORE R_RPS R_P50 R_P99 R_NON2XX R_200 R_ROWS R_RSS R_SOCK R_NOTE R_OTHER
add_result() { # name before rps p50us p99us non2xx ok200 rows rssMB sockerr note other-ticks
  R_NAME+=("$1"); R_BEFORE+=("$2"); R_RPS+=("$3"); R_P50+=("$4"); R_P99+=("$5"); R_NON2XX+=("$6")
  R_200+=("$7"); R_ROWS+=("$8"); R_RSS+=("$9"); R_SOCK+=("${10}"); R_NOTE+=("${11}")
  R_OTHER+=("$(cores "${12}" "$W_duration_us")")
  R_CPU_US+=("${SERVER_CPU_US:--}")
  SERVER_CPU_US=""
}

# Server CPU (user + system, all threads) per request of the measured window, in µs: steadier than
# req/s on a shared machine, for telemetry's cost. Sets SERVER_CPU_US for the next add_result.
SERVER_CPU_US=""
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------------
# nginx ceiling

bench_nginx() {
  local port prefix pid out
  port=$(free_port)
  prefix=$TMP/nginx
  mkdir -p "$prefix"
  sed -e "s|@PORT@|$port|g" -e "s|@PREFIX@|$prefix|g" -e "s|@WORKERS@|$NGINX_WORKERS|g" \
    "$BENCH_DIR/nginx.conf" >"$prefix/nginx.conf"
  "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -e "$prefix/nginx-error.log" >"$prefix/stdout.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if ! wait_http "http://127.0.0.1:$port/api/v1/pv" "$pid" 10; then
    fail "nginx did not start: $(tail -3 "$prefix/nginx-error.log" "$prefix/stdout.log" 2>/dev/null)"
    stop_pid "$pid" 5
    return 1
  fi
  log "nginx (worker_processes $NGINX_WORKERS) on :$port — wrk ${DURATION}s, $CONNECTIONS connections, $THREADS threads"
  out=$TMP/wrk-nginx.txt
  run_wrk "http://127.0.0.1:$port" "bench-site" "$out"
  kill -0 "$pid" 2>/dev/null || { fail "nginx exited during the load: $(tail -3 "$prefix/nginx-error.log")"; W_ok=0; }
  stop_pid "$pid" 10
  ((W_ok)) || return 1
  NGINX_RPS=$(rps_of "$W_requests" "$W_duration_us")
  add_result "nginx fixed 200" "-" "$NGINX_RPS" "$W_p50_us" "$W_p99_us" "$W_errors_status" \
    "$((W_requests - W_errors_status))" "-" "-" \
    "$((W_errors_connect + W_errors_read + W_errors_write + W_errors_timeout))" \
    "$(tail_note); $(cpu_note)" "$W_other"
  log "nginx: $NGINX_RPS req/s, p50 $(fmt_ms "$W_p50_us") ms, p99 $(fmt_ms "$W_p99_us") ms; $(cpu_note)"
}

# ---------------------------------------------------------------------------------------------------
# Databases

PG_SEQ=0
# Sets DB_URL (and DB_FILE or DB_NAME) for a fresh, empty database of backend $1.
fresh_db() {
  case $1 in
    sqlite)
      DB_FILE=$TMP/squirrel-$RANDOM$RANDOM.db
      DB_URL="sqlite://$DB_FILE"
      ;;
    pg)
      PG_SEQ=$((PG_SEQ + 1))
      DB_NAME="squirrel_bench_$$_$PG_SEQ"
      psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" -c "CREATE DATABASE \"$DB_NAME\"" >/dev/null || return 1
      PG_DBS+=("$DB_NAME")
      DB_URL="$PG_URL/$DB_NAME"
      ;;
  esac
}

drop_db() {
  case $1 in
    sqlite) rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm" ;;
    pg)
      psql_admin -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null || fail "could not drop $DB_NAME"
      local keep=() d
      for d in "${PG_DBS[@]}"; do [[ $d == "$DB_NAME" ]] || keep+=("$d"); done
      PG_DBS=("${keep[@]}")
      ;;
  esac
}

# SQL scalar against the current database.
db_query() {
  case $1 in
    sqlite) sqlite3 -batch -bail "$DB_FILE" "$2" ;;
    pg) psql "$DB_URL" -v ON_ERROR_STOP=1 -qAtX -c "$2" ;;
  esac
}

# The pre-fill: $3 rows for site $2, created_at spread evenly over the last 365 days (oldest first, as
# they would have arrived), ~200 paths, a few referrers/UTMs/browsers, 1 in 20 a bot, ~3 pageviews per
# visitor. SQLite: the sqlite3 CLI with a recursive CTE in one transaction (rollback journal and
# synchronous=OFF while filling, WAL restored after). PostgreSQL: one INSERT ... SELECT FROM
# generate_series (FK triggers skipped with session_replication_role: the site exists), then
# VACUUM ANALYZE and CHECKPOINT so neither lands inside the measurement.
prefill() {
  local backend=$1 site=$2 rows=$3 now span
  now=$(date +%s%3N)
  span=31536000000
  local cols="site_id, created_at, url, path, referrer, referrer_domain, utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device_type, country, is_bot, visitor_id, visitor_id_prev"
  # Shared SELECT list; `i` is 0..rows-1 and integer division behaves alike on both backends.
  local select="$site,
      ($now - $span) + (i * $span) / $rows,
      'https://example.com' || (CASE WHEN i % 200 = 0 THEN '/' ELSE '/section-' || (i % 20) || '/page-' || (i % 200) END),
      CASE WHEN i % 200 = 0 THEN '/' ELSE '/section-' || (i % 20) || '/page-' || (i % 200) END,
      CASE i % 5 WHEN 0 THEN 'https://www.google.com/' WHEN 1 THEN 'https://news.ycombinator.com/item?id=' || (i % 9973) ELSE '' END,
      CASE i % 5 WHEN 0 THEN 'www.google.com' WHEN 1 THEN 'news.ycombinator.com' ELSE '' END,
      CASE WHEN i % 7 = 0 THEN 'newsletter' ELSE '' END,
      CASE WHEN i % 7 = 0 THEN 'email' ELSE '' END,
      CASE WHEN i % 7 = 0 THEN 'campaign-' || (i % 12) ELSE '' END,
      '', '',
      CASE i % 4 WHEN 0 THEN 'Chrome' WHEN 1 THEN 'Safari' WHEN 2 THEN 'Firefox' ELSE 'Edge' END,
      CASE i % 4 WHEN 0 THEN '124.0.0.0' WHEN 1 THEN '17.4.1' WHEN 2 THEN '125.0' ELSE '124.0.2478.51' END,
      CASE i % 3 WHEN 0 THEN 'Windows' WHEN 1 THEN 'iOS' ELSE 'Android' END,
      CASE i % 3 WHEN 0 THEN 'desktop' WHEN 1 THEN 'mobile' ELSE 'tablet' END,
      CASE i % 6 WHEN 0 THEN 'US' WHEN 1 THEN 'DE' WHEN 2 THEN 'FR' WHEN 3 THEN 'GB' ELSE '' END,
      CASE WHEN i % 20 = 0 THEN 1 ELSE 0 END,
      (i / 3) * 2654435761 + 1,
      NULL"
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
  local rc=$?
  sync
  return $rc
}

# ---------------------------------------------------------------------------------------------------
# The OTLP receiver for telemetry-on runs: nginx (bench/otlp_sink.nginx.conf) answers 200 to every
# export without decoding it and logs each one's path and size.

SINK_PID="" SINK_PORT="" SINK_DIR=""
start_sink() {
  [[ -n $SINK_PID ]] && kill -0 "$SINK_PID" 2>/dev/null && stop_pid "$SINK_PID" 5
  SINK_PORT=$(free_port)
  SINK_DIR=$TMP/otlp-sink-$SINK_PORT
  mkdir -p "$SINK_DIR"
  sed -e "s|@PORT@|$SINK_PORT|g" -e "s|@PREFIX@|$SINK_DIR|g" "$BENCH_DIR/otlp_sink.nginx.conf" >"$SINK_DIR/nginx.conf"
  "$NGINX" -p "$SINK_DIR" -c "$SINK_DIR/nginx.conf" -e "$SINK_DIR/error.log" >"$SINK_DIR/stdout.log" 2>&1 &
  SINK_PID=$!
  PIDS+=("$SINK_PID")
  if ! wait_http "http://127.0.0.1:$SINK_PORT/v1/ready" "$SINK_PID" 10; then
    fail "the OTLP sink (nginx) did not start: $(tail -3 "$SINK_DIR/error.log" 2>/dev/null)"
    return 1
  fi
}
# Stops the sink and prints one summary line (POST requests, body bytes, per signal).
stop_sink() {
  stop_pid "$SINK_PID" 10
  awk '$1 ~ /^\/v1\/(traces|metrics|logs)$/ { n++; b += ($2 == "-" ? 0 : $2); k[$1]++ }
    END { printf "OTLP requests=%d bytes=%d traces=%d metrics=%d logs=%d\n", n, b, k["/v1/traces"], k["/v1/metrics"], k["/v1/logs"] }' \
    "$SINK_DIR/otlp.log"
}

# The bare baseline (bench/baseline) on a fresh database of backend $1: same load, same warm-up.

bench_baseline() {
  local backend=$1 name port pid out logf max_id rows hwm
  case $backend in sqlite) name="baseline SQLite" ;; pg) name="baseline PostgreSQL" ;; esac
  logf=$TMP/baseline-$backend.log
  fresh_db "$backend" || { fail "$name: could not create a database"; return 1; }
  port=$(free_port)
  "$BASELINE_BIN" "$DB_URL" "127.0.0.1:$port" >>"$logf" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  # The readiness probe stores a row; rows are counted from the highest id before the load.
  if ! wait_http "http://127.0.0.1:$port/api/v1/pv?sid=ready" "$pid" 30; then
    fail "$name: did not come up: $(log_tail "$logf" 5)"
    stop_pid "$pid" 5; drop_db "$backend"; return 1
  fi
  if ((WARMUP > 0)); then
    DURATION=$WARMUP run_wrk "http://127.0.0.1:$port" "bench-site" "$TMP/wrk-baseline-$backend-warmup.txt"
    sleep 0.5
  fi
  max_id=$(db_query "$backend" "SELECT COALESCE(MAX(id), 0) FROM pageviews")
  log "$name: :$port (pid $pid) — wrk ${DURATION}s, $CONNECTIONS connections, $THREADS threads"
  out=$TMP/wrk-baseline-$backend.txt
  run_wrk "http://127.0.0.1:$port" "bench-site" "$out"
  kill -0 "$pid" 2>/dev/null || { fail "$name: exited during the load: $(log_tail "$logf" 3)"; W_ok=0; }
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  stop_pid "$pid" 10
  if ((W_ok)); then
    rows=$(db_query "$backend" "SELECT COUNT(*) FROM pageviews WHERE id > $max_id")
    local rps
    rps=$(rps_of "$W_requests" "$W_duration_us")
    BASELINE_RPS[$backend]=$rps
    add_result "$name" 0 "$rps" "$W_p50_us" "$W_p99_us" "$W_errors_status" "$((W_requests - W_errors_status))" "$rows" \
      "$(awk -v k="${hwm:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" \
      "$((W_errors_connect + W_errors_read + W_errors_write + W_errors_timeout))" \
      "$(tail_note); $(cpu_note)" "$W_other"
    log "$name: $rps req/s, p50 $(fmt_ms "$W_p50_us") ms, p99 $(fmt_ms "$W_p99_us") ms, rows $rows; $(cpu_note)"
  fi
  drop_db "$backend"
}

# One squirrel target: backend $1, $2 rows stored before the load, $3 = 1 for telemetry on.

bench_squirrel() {
  local backend=$1 before=$2 otel=${3:-0} label sid site_id port pid out logf t max_id rows bots rss hwm cpu
  local name
  case $backend in sqlite) name="squirrel SQLite" ;; pg) name="squirrel PostgreSQL" ;; esac
  label="$backend-$before"
  if ((otel)); then
    name="$name +otel"
    label="$label-otel"
    start_sink || return 1
  fi
  logf=$TMP/squirrel-$label.log
  fresh_db "$backend" || { fail "$name: could not create a database"; return 1; }
  export DATABASE_URL=$DB_URL

  if ! "$BIN" create-user --email bench@example.com --password bench-password-1 >>"$logf" 2>&1; then
    fail "$name: create-user failed: $(log_tail "$logf" 3)"; drop_db "$backend"; return 1
  fi
  sid=$("$BIN" create-site --owner bench@example.com --name "Bench $label" 2>>"$logf" | tail -1)
  if [[ -z $sid ]]; then
    fail "$name: create-site printed no identifier: $(log_tail "$logf" 3)"; drop_db "$backend"; return 1
  fi
  site_id=$(db_query "$backend" "SELECT id FROM sites WHERE identifier = '$sid'")
  [[ $site_id =~ ^[0-9]+$ ]] || { fail "$name: site $sid not found in the database"; drop_db "$backend"; return 1; }

  if ((before > 0)); then
    log "$name: pre-filling $before rows for site $site_id"
    t=$(date +%s%N)
    if ! run_waited /dev/null "$logf" prefill "$backend" "$site_id" "$before"; then
      fail "$name: pre-fill failed: $(log_tail "$logf" 3)"; drop_db "$backend"; return 1
    fi
    t=$(awk -v a="$t" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    PREFILL_SECS[$backend]=$t
    log "$name: pre-fill took ${t}s$([[ $backend == sqlite ]] && printf ', file %s MB' $(($(stat -c %s "$DB_FILE") / 1048576)))"
  fi
  max_id=$(db_query "$backend" "SELECT COALESCE(MAX(id), 0) FROM pageviews")
  rows=$(db_query "$backend" "SELECT COUNT(*) FROM pageviews WHERE id <= $max_id")
  if [[ $rows != "$before" ]]; then
    fail "$name: expected $before stored rows before the load, found $rows"; drop_db "$backend"; return 1
  fi

  port=$(free_port)
  # Default (text) logs on purpose: SQUIRREL_LOG_FORMAT=json costs ~10 us of CPU per hit (span
  # fields are re-serialised as JSON on every record) even though nothing is printed per hit.
  local -a extra_env=() unset_env=()
  ((XFF)) && extra_env+=(TRUSTED_PROXIES=127.0.0.1)
  # Telemetry off: no token and no endpoint (also when the caller's environment has them).
  # On: everything sampled, traces + metrics + logs to the sink, a 1 s metric interval.
  if ((otel)); then
    extra_env+=(AXIOM_API_TOKEN=bench-token "AXIOM_DOMAIN=http://127.0.0.1:$SINK_PORT" AXIOM_DATASET=bench
      AXIOM_METRICS_DATASET=bench-metrics AXIOM_LOGS_DATASET=bench-logs OTEL_TRACES_SAMPLER=always_on
      OTEL_METRIC_EXPORT_INTERVAL=1000)
  else
    unset_env+=(-u AXIOM_API_TOKEN -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  fi
  env "${unset_env[@]}" "${extra_env[@]}" "$BIN" serve --addr "127.0.0.1:$port" >>"$logf" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  if ! wait_http "http://127.0.0.1:$port/up" "$pid" 60; then
    fail "$name: server did not come up: $(log_tail "$logf" 5)"
    stop_pid "$pid" 10; drop_db "$backend"; return 1
  fi
  local rss0 sampler cold=""
  rss0=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
  if ((WARMUP > 0)); then
    log "$name: ${WARMUP}s cold-start load (reported apart)"
    if DURATION=$WARMUP run_wrk "http://127.0.0.1:$port" "$sid" "$TMP/wrk-$label-warmup.txt"; then
      sleep 0.5 # let the warm-up's last in-flight rows commit before the baseline is taken
      local warm_rows
      warm_rows=$(db_query "$backend" "SELECT COUNT(*) FROM pageviews WHERE id > $max_id")
      max_id=$(db_query "$backend" "SELECT COALESCE(MAX(id), 0) FROM pageviews")
      cold="cold start (first ${WARMUP}s): $(rps_of "$W_requests" "$W_duration_us") req/s, p50 $(fmt_ms "$W_p50_us") ms, p99 $(fmt_ms "$W_p99_us") ms, max $(fmt_ms "$W_max_us") ms, non-2xx $W_errors_status, 200s $((W_requests - W_errors_status)), rows $warm_rows; "
      log "$name: $cold"
    fi
  fi
  # RSS once a second during the load, to show growth (peak alone hides its shape).
  while kill -0 "$pid" 2>/dev/null; do
    awk '/^VmRSS/ { printf "%d ", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null
    sleep 1
  done >"$TMP/rss-$label.txt" &
  sampler=$!
  PIDS+=("$sampler")
  log "$name, $before stored: :$port (pid $pid, RSS $((rss0 / 1024)) MB) — wrk ${DURATION}s, $CONNECTIONS connections, $THREADS threads"
  out=$TMP/wrk-$label.txt
  local ticks0
  ticks0=$(proc_ticks "$pid")
  run_wrk "http://127.0.0.1:$port" "$sid" "$out"
  SERVER_CPU_US=$(awk -v a="${ticks0:-0}" -v b="$(proc_ticks "$pid")" -v hz="$(getconf CLK_TCK)" -v n="$W_requests" \
    'BEGIN { if (n > 0 && b > a) printf "%.1f", (b - a) / hz * 1e6 / n; else print "-" }')
  if ! kill -0 "$pid" 2>/dev/null; then
    # Something else stopped it (a crash, or another process's SIGTERM): the figures are void.
    stop_pid "$sampler" 5
    stop_pid "$pid" 1
    fail "$name: the server exited during the load (status $STOP_RC): $(log_tail "$logf" 3)"
    W_ok=0
    drop_db "$backend"
    unset DATABASE_URL
    return 1
  fi
  hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null)
  cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ printf "%.1f", ($14 + $15) / hz }' "/proc/$pid/stat" 2>/dev/null)
  stop_pid "$sampler" 5
  t=$(date +%s%N)
  stop_pid "$pid" 45
  t=$((($(date +%s%N) - t) / 1000000))
  [[ $STOP_RC == 0 ]] || fail "$name: server did not exit 0 after SIGTERM (status $STOP_RC): $(log_tail "$logf" 3)"
  if ((W_ok)); then
    rows=$(db_query "$backend" "SELECT COUNT(*) FROM pageviews WHERE id > $max_id")
    bots=$(db_query "$backend" "SELECT COUNT(*) FROM pageviews WHERE id > $max_id AND is_bot = 1")
    [[ $rows =~ ^[0-9]+$ ]] || { fail "$name: could not count stored rows"; rows="?"; }
    local rps ok200 warns note
    rps=$(rps_of "$W_requests" "$W_duration_us")
    ok200=$((W_requests - W_errors_status))
    warns=$(warn_lines "$logf" | grep -c .)
    local sink_note=""
    if ((otel)); then
      local dropped
      dropped=$(grep -o 'spans_dropped=[0-9]*' "$logf" | tail -1)
      sink_note="telemetry: $(stop_sink) ${dropped:-spans_dropped=0}; "
    fi
    note="${sink_note}${cold}measured: $(tail_note); server CPU ${cpu}s; SIGTERM->exit ${t} ms; bots $bots; RSS MB at start $((rss0 / 1024)), each second of load: $(cat "$TMP/rss-$label.txt")(end $((${rss:-0} / 1024))); server WARN/ERROR lines $warns; $(cpu_note)"
    add_result "$name" "$before" "$rps" "$W_p50_us" "$W_p99_us" "$W_errors_status" "$ok200" "$rows" \
      "$(awk -v k="${hwm:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" \
      "$((W_errors_connect + W_errors_read + W_errors_write + W_errors_timeout))" "$note" "$W_other"
    log "$name, $before stored: $rps req/s, p50 $(fmt_ms "$W_p50_us") ms, p99 $(fmt_ms "$W_p99_us") ms, 200s $ok200, rows $rows, non-2xx $W_errors_status; $note"
    if ((warns)); then
      log "$name: server warnings (first 5):"
      warn_lines "$logf" | head -5 | cut -c1-300 >&2
    fi
  fi
  drop_db "$backend"
  unset DATABASE_URL
}

# ---------------------------------------------------------------------------------------------------
# Run

declare -A PREFILL_SECS=() BASELINE_RPS=()
NGINX_RPS=""
log "squirrel $COMMIT ($BIN), backends: $backends, DURATION=$DURATION ROWS=$ROWS, temp dir $TMP"
bench_nginx
for backend in $backends; do
  ((BASELINE)) && bench_baseline "$backend"
  bench_squirrel "$backend" 0
  # Right after the same run with telemetry off, so both see the same machine state; then more
  # off/on pairs, alternating, for a median.
  if ((TELEMETRY)); then
    bench_squirrel "$backend" 0 1
    for ((pair = 2; pair <= PAIRS; pair++)); do
      bench_squirrel "$backend" 0
      bench_squirrel "$backend" 0 1
    done
  fi
  ((ROWS > 0)) && bench_squirrel "$backend" "$ROWS"
done

# ---------------------------------------------------------------------------------------------------
# Summary

ratio() { [[ -n $NGINX_RPS && $NGINX_RPS != 0 && $1 =~ ^[0-9]+$ ]] && awk -v a="$1" -v b="$NGINX_RPS" 'BEGIN { printf "%.2f", a / b }' || echo "-"; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
mark() { if "$@"; then echo ok; else echo MISS; fi; }

# Per-target targets column: SQLite >= 0.40x nginx, PostgreSQL >= 0.30x, p99 <= 5 ms,
# rows stored >= 200s returned, peak RSS <= 50 MB.
targets_for() {
  local i=$1 want r
  case ${R_NAME[i]} in
    baseline*) echo "-"; return ;;
    *SQLite*) want=0.40 ;;
    *PostgreSQL*) want=0.30 ;;
    *) echo "-"; return ;;
  esac
  r=$(ratio "${R_RPS[i]}")
  printf 'ratio>=%s %s, p99<=5ms %s, rows>=200s %s, rss<=50MB %s' \
    "$want" "$(mark ge "$r" "$want")" "$(mark ge 5000 "${R_P99[i]}")" \
    "$(mark ge "${R_ROWS[i]}" "${R_200[i]}")" "$(mark ge 50 "${R_RSS[i]}")"
}

elapsed=$(($(date +%s) - T0))
{
  echo
  echo "Squirrel Stats ingest benchmark — $(date -u +'%Y-%m-%d %H:%M UTC'), commit $COMMIT, $(nproc) cores"
  ((WARMUP)) && echo "each squirrel target: ${WARMUP}s of cold-start load right after start (figures in the details), then the measured ${DURATION}s"
  echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency -s bench/ingest.lua (keep-alive, mixed UAs/paths/referrers/utm$( ((XFF)) && echo ', X-Forwarded-For'))"
  echo "nginx: worker_processes $NGINX_WORKERS, return 200 '{\"status\":\"ok\"}'"
  echo
  fmt='%-20s %12s %9s %7s %8s %8s %8s %9s %11s %9s %8s  %s\n'
  # shellcheck disable=SC2059
  printf "$fmt" target stored-before req/s x-nginx "p50 ms" "p99 ms" non-2xx 200s "rows stored" "RSS MB" sockerr "targets"
  disturbed=0
  for i in "${!R_NAME[@]}"; do
    rps=${R_RPS[i]}
    if ge "${R_OTHER[i]}" 0.20; then rps="*$rps"; disturbed=1; fi
    # shellcheck disable=SC2059
    printf "$fmt" "${R_NAME[i]}" "${R_BEFORE[i]}" "$rps" "$(ratio "${R_RPS[i]}")" \
      "$(fmt_ms "${R_P50[i]}")" "$(fmt_ms "${R_P99[i]}")" "${R_NON2XX[i]}" "${R_200[i]}" "${R_ROWS[i]}" \
      "${R_RSS[i]}" "${R_SOCK[i]}" "$(targets_for "$i")"
  done
  echo
  # Flatness: req/s with ROWS stored vs empty, per backend (target: flat; shown as a percentage).
  for name in "squirrel SQLite" "squirrel PostgreSQL"; do
    empty="" full=""
    for i in "${!R_NAME[@]}"; do
      [[ ${R_NAME[i]} == "$name" ]] || continue
      [[ ${R_BEFORE[i]} == 0 ]] && empty=${R_RPS[i]} || full=${R_RPS[i]}
    done
    if [[ -n $empty && -n $full && $empty != 0 ]]; then
      echo "$name: req/s with $ROWS stored = $(awk -v a="$full" -v b="$empty" 'BEGIN { printf "%.0f%%", 100 * a / b }') of empty (target: flat)"
    fi
  done
  # squirrel against the bare baseline: the first empty-database run of each, same backend.
  for b in sqlite pg; do
    [[ -n ${BASELINE_RPS[$b]:-} ]] || continue
    name="squirrel SQLite"; [[ $b == pg ]] && name="squirrel PostgreSQL"
    for i in "${!R_NAME[@]}"; do
      [[ ${R_NAME[i]} == "$name" && ${R_BEFORE[i]} == 0 ]] || continue
      awk -v n="$name" -v a="${R_RPS[i]}" -v b="${BASELINE_RPS[$b]}" -v g="$NGINX_RPS" 'BEGIN {
        printf "%s: %.2fx the bare baseline (%d vs %d req/s; the baseline is %.2fx nginx)\n", n, a / b, a, b, (g > 0 ? b / g : 0) }'
      break
    done
  done
  # Telemetry cost: each +otel run against the run just before it (same backend, empty database),
  # then the median of the pairs.
  for name in "squirrel SQLite" "squirrel PostgreSQL"; do
    off="" pairs=()
    for i in "${!R_NAME[@]}"; do
      [[ ${R_BEFORE[i]} == 0 ]] || continue
      [[ ${R_NAME[i]} == "$name" ]] && off=$i
      [[ ${R_NAME[i]} == "$name +otel" && -n $off ]] &&
        pairs+=("${R_RPS[off]} ${R_RPS[i]} ${R_P50[off]} ${R_P50[i]} ${R_CPU_US[off]/-/0} ${R_CPU_US[i]/-/0}")
    done
    ((${#pairs[@]})) || continue
    # Per pair: loss (%), added p50 (ms), and server CPU per request off → on (µs) with the increase
    # (%); the medians are taken apart (POSIX awk has no sort).
    pair_rows=$(printf '%s\n' "${pairs[@]}" | awk '{ printf "%.1f %.3f %d %d %.1f %.1f %.1f\n", ($1 > 0 ? 100 * ($1 - $2) / $1 : 0), ($4 - $3) / 1000, $1, $2, $5, $6, ($5 > 0 ? 100 * ($6 - $5) / $5 : 0) }')
    echo "$pair_rows" | awk -v n="$name" '{ printf "%s: pair %d: telemetry off %d req/s, on %d req/s: %.1f%% of req/s, %+.3f ms of p50; server CPU %.1f -> %.1f us per request (%+.1f%%)\n", n, NR, $3, $4, $1, $2, $5, $6, $7 }'
    count=${#pairs[@]} mid=$(( (${#pairs[@]} + 1) / 2 ))
    loss=$(echo "$pair_rows" | awk '{ print $1 }' | sort -g | sed -n "${mid}p")
    added=$(echo "$pair_rows" | awk '{ print $2 }' | sort -g | sed -n "${mid}p")
    cpu_more=$(echo "$pair_rows" | awk '{ print $7 }' | sort -g | sed -n "${mid}p")
    awk -v n="$name" -v l="$loss" -v d="$added" -v c="$count" -v u="$cpu_more" 'BEGIN {
      printf "%s: telemetry on costs %.1f%% of req/s and %+.3f ms of p50 (median of %d pairs; targets <= 5%% and <= +0.2 ms): %s; server CPU per request %+.1f%% (median)\n",
        n, l, d, c, (l <= 5 && d <= 0.2 ? "ok" : "MISS"), u }'
  done
  for b in "${!PREFILL_SECS[@]}"; do echo "pre-fill of $ROWS rows ($b): ${PREFILL_SECS[$b]} s"; done
  echo "targets: SQLite >= 0.40x nginx, PostgreSQL >= 0.30x, p99 <= 5 ms, rows stored >= 200s, flat 0 -> $ROWS, RSS <= 50 MB"
  ((disturbed)) && echo "* other processes used >= 0.20 cores during that measurement: disturbed figure, run again on a quiet machine"
  echo "details: 'sockerr' = wrk connect+read+write+timeout errors; 200s = wrk requests minus status >= 400"
  for i in "${!R_NAME[@]}"; do
    [[ -n ${R_NOTE[i]} ]] && echo "  ${R_NAME[i]}, ${R_BEFORE[i]} stored: ${R_NOTE[i]}"
  done
  echo "total time: ${elapsed}s (of which build/setup ${BUILD_SECS}s)$( ((failed)) && echo '  — SOME TARGETS FAILED TO RUN (see log above)')"
}

exit "$failed"
