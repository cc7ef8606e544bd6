#!/usr/bin/env bash
# Ingest throughput while the telemetry backend is in trouble: GET /api/v1/pv under wrk (the load of
# bench/ingest.lua) against a release `squirrel serve` on a fresh SQLite file, with telemetry export
# on (every span sampled, traces + metrics + logs over OTLP/HTTP) to a backend that is
#   normal   bench/otlp_sink.py answering 200
#   down     a closed loopback port
#   slow     bench/otlp_sink.py answering after 5 s
#   401      bench/otlp_sink.py answering 401 (a refused token)
# then normal again (the two normal runs show the machine's noise). Prints req/s, p99 and rows
# stored for each, and req/s as a ratio of the mean normal run (target: >= 0.95). Figures only: a
# missed target does not change the exit status; exit 1 when something failed to run.
#
#   bench/faults.sh [--no-build]        (default: cargo build --release first)
#
# Environment: DURATION seconds per run [15], CONNECTIONS [32], THREADS [2],
#   SQUIRREL_BIN (use this binary, no build), BENCH_TMPDIR [$TMPDIR or /tmp].

set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$BENCH_DIR/.." && pwd)
DURATION=${DURATION:-15}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
build=1
[[ ${1:-} == --no-build ]] && build=0

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
TMP=""
declare -a PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  [[ -n $TMP && -d $TMP ]] && rm -rf "$TMP"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v curl >/dev/null || need+=(curl)
command -v sqlite3 >/dev/null || need+=(sqlite3)
command -v python3 >/dev/null || need+=(python3)
if ((${#need[@]})); then
  log "installing ${need[*]} with apt-get"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; } >&2 ||
    { echo "could not install ${need[*]}" >&2; exit 1; }
fi

if [[ -n ${SQUIRREL_BIN:-} ]]; then
  BIN=$SQUIRREL_BIN
elif ((build)); then
  log "building the release binary (cargo build --release)"
  (cd "$REPO" && cargo build --release --quiet --bin squirrel) || { echo "cargo build failed" >&2; exit 1; }
  BIN=$REPO/target/release/squirrel
else
  BIN=$REPO/target/release/squirrel
fi
[[ -x $BIN ]] || { echo "no squirrel binary at $BIN" >&2; exit 1; }
TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/squirrel-faults.XXXXXX")
cd "$TMP" || exit 1 # squirrel reads ./.env: none here

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<" $2"; }

# One run: $1 name, $2 OTLP base URL, $3... extra sink arguments ("none": no sink, the port is closed).
declare -a NAMES=() RPS=() P99=() OK=() ROWS=() EXIT_MS=()
run() {
  local name=$1 base sink_pid="" serve_pid port db
  shift
  if [[ ${1:-} == none ]]; then
    base="http://127.0.0.1:$(free_port)"
  else
    python3 "$BENCH_DIR/otlp_sink.py" "$TMP/sink.port" "$@" >"$TMP/sink-$name.out" 2>&1 &
    sink_pid=$!
    PIDS+=("$sink_pid")
    for _ in $(seq 50); do [[ -s $TMP/sink.port ]] && break; sleep 0.1; done
    base="http://127.0.0.1:$(cat "$TMP/sink.port")"
    rm -f "$TMP/sink.port"
  fi
  db=$TMP/$name.db
  export DATABASE_URL="sqlite://$db"
  "$BIN" create-user --email bench@example.com --password 'bench password' >/dev/null 2>&1 || { log "$name: create-user failed"; return 1; }
  local sid
  sid=$("$BIN" create-site --owner bench@example.com --name bench 2>/dev/null | tail -n 1)
  port=$(free_port)
  AXIOM_API_TOKEN=bench-token AXIOM_DOMAIN="$base" AXIOM_DATASET=bench AXIOM_METRICS_DATASET=bench-metrics \
    AXIOM_LOGS_DATASET=bench-logs OTEL_TRACES_SAMPLER=always_on OTEL_METRIC_EXPORT_INTERVAL=1000 \
    "$BIN" serve --addr "127.0.0.1:$port" >"$TMP/serve-$name.log" 2>&1 &
  serve_pid=$!
  PIDS+=("$serve_pid")
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/up" 2>/dev/null && break; sleep 0.1; done
  # A short warm-up (first requests pay one-time costs), then the measured run.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d2s -s "$BENCH_DIR/ingest.lua" "http://127.0.0.1:$port" -- "$sid" >/dev/null
  local before
  before=$(sqlite3 "$db" "SELECT COUNT(*) FROM pageviews")
  log "$name: wrk ${DURATION}s, $CONNECTIONS connections (OTLP backend $base $*)"
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -s "$BENCH_DIR/ingest.lua" \
    "http://127.0.0.1:$port" -- "$sid" | grep '^BENCH ')
  [[ -n $out ]] || { log "$name: wrk failed"; return 1; }
  local t0 t1
  t0=$(date +%s%N)
  kill -TERM "$serve_pid"
  wait "$serve_pid" || log "$name: serve exited non-zero"
  t1=$(date +%s%N)
  [[ -n $sink_pid ]] && { kill -TERM "$sink_pid"; wait "$sink_pid"; }
  local requests duration status
  requests=$(field requests "$out") duration=$(field duration_us "$out") status=$(field errors_status "$out")
  NAMES+=("$name")
  RPS+=("$(awk -v r="$requests" -v d="$duration" 'BEGIN { printf "%.0f", r / (d / 1e6) }')")
  P99+=("$(awk -v p="$(field p99_us "$out")" 'BEGIN { printf "%.2f", p / 1000 }')")
  OK+=("$((requests - status))")
  ROWS+=("$(($(sqlite3 "$db" "SELECT COUNT(*) FROM pageviews") - before))")
  EXIT_MS+=("$(((t1 - t0) / 1000000))")
}

failed=0
run normal || failed=1
run down none || failed=1
run slow --delay 5 || failed=1
run 401 --status 401 || failed=1
run normal-again || failed=1

normal=$(awk -v a="${RPS[0]:-0}" -v b="${RPS[4]:-0}" 'BEGIN { printf "%.0f", (a + b) / 2 }')
echo
echo "Ingest under OTLP backend faults — $(date -u +'%Y-%m-%d %H:%M UTC'), commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null), $(nproc) cores, $BIN"
echo "wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s -s bench/ingest.lua, SQLite, telemetry on (always_on, traces + metrics + logs)"
printf '%-13s %9s %9s %9s %11s %12s %15s\n' backend req/s x-normal "p99 ms" "200s" "rows stored" "SIGTERM->exit"
for i in "${!NAMES[@]}"; do
  printf '%-13s %9s %9s %9s %11s %12s %12s ms\n' "${NAMES[i]}" "${RPS[i]}" \
    "$(awk -v a="${RPS[i]}" -v b="$normal" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')" \
    "${P99[i]}" "${OK[i]}" "${ROWS[i]}" "${EXIT_MS[i]}"
done
echo "x-normal: req/s over the mean of the two normal runs ($normal req/s); target >= 0.95. rows stored >= 200s: nothing lost."
exit "$failed"
