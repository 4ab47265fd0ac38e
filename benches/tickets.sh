#!/usr/bin/env bash
# Benchmark (not a test): bookings per second of the tickets service with its
# durable SQLite ledger beside the same server with `--tickets-db :memory:`,
# both loaded by `reqresp bench` with the same settings in the same run.
#
#   benches/tickets.sh                           # 200 connections, 3 rounds of 1 s warmup + 5 s each
#   ROUNDS=5 DURATION=10 benches/tickets.sh
#   CONNECTIONS=64 benches/tickets.sh
#   DB_DIR=/var/lib/reqresp benches/tickets.sh   # the disk the ledger would live on
#   REQRESP=/path/to/reqresp benches/tickets.sh  # another build of reqresp
#
# Each round starts a fresh server on 127.0.0.1 with a stock no run can sell
# out (10^9), first in memory, then with a ledger file in DB_DIR (default
# target/bench-tickets, i.e. on the disk of the build; not /tmp, which is a
# tmpfs on some systems and would make fsync free), and runs
#   reqresp bench ADDR -c C -m 'book ticket' --expect 'Booked one ticket' --warmup W --duration D
# against it. Every good response is a confirmed booking; with the ledger a
# confirmation is sent only after its commit reached the disk (WAL,
# synchronous=FULL). It prints a Markdown table (bookings/s, p50, p99,
# errors, server CPU, the ledger's mean group-commit size and commit time),
# checks that the ledger holds at least every booking confirmed, and prints
# the ratio durable / memory per round and its median. See
# docs/benchmark-server.md.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-200}
STOCK=1000000000
DB_DIR=${DB_DIR:-target/bench-tickets}
LIMIT=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 60 }')
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
  rm -f "$DB_DIR"/bench.db "$DB_DIR"/bench.db-wal "$DB_DIR"/bench.db-shm
}
trap cleanup EXIT

die() { echo "tickets.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is missing"

echo "== building (release)" >&2
cargo build --release --quiet --bin reqresp
REQRESP=${REQRESP:-target/release/reqresp}
mkdir -p "$DB_DIR"
DB="$DB_DIR/bench.db"

# start_server DB: starts it in the background, sets SERVER_PID and
# SERVER_ADDR from its `listening on` line.
start_server() {
  local out="$WORK/server.out"
  : >"$out"
  "$REQRESP" server --listen 127.0.0.1:0 --service tickets --tickets "$STOCK" \
    --tickets-db "$1" --reset-tickets --max-connections 4096 >"$out" 2>"$WORK/server.err" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    SERVER_ADDR=$(sed -n 's/^listening on //p' "$out")
    [ -n "$SERVER_ADDR" ] && return
    sleep 0.1
  done
  die "server did not start: $(head -c 300 "$WORK/server.err")"
}

# Stops the server with SIGTERM and waits, so the ledger is closed and its
# statistics logged.
stop_server() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# measure ROUND KIND: one run; appends a result line.
measure() {
  local round=$1 kind=$2 name="$1-$2" db
  if [ "$kind" = memory ]; then db=:memory:; else db=$DB; fi
  start_server "$db"
  echo "== round $round, $kind: $SERVER_ADDR" >&2
  local cpu0 cpu1 status=0
  cpu0=$(cpu_secs "$SERVER_PID")
  timeout "$LIMIT" "$REQRESP" bench "$SERVER_ADDR" -c "$CONNECTIONS" -m 'book ticket' \
    --expect 'Booked one ticket' --warmup "$WARMUP" --duration "$DURATION" \
    --format json >"$WORK/$name.json" 2>"$WORK/$name.err" || status=$?
  cpu1=$(cpu_secs "$SERVER_PID")
  stop_server
  if [ ! -s "$WORK/$name.json" ]; then
    echo "$round $kind FAILED exit $status: $(head -c 200 "$WORK/$name.err")" >>"$WORK/results"
    return
  fi
  python3 - "$WORK/$name.json" "$WORK/server.err" "$round" "$kind" "$cpu0" "$cpu1" "$db" \
    >>"$WORK/results" <<'EOF'
import json, re, sqlite3, sys
report_path, log_path, rnd, kind, cpu0, cpu1, db = sys.argv[1:]
r = json.load(open(report_path))
lat = r["latency"] or {}
batch, commit_ms, in_ledger = "-", "-", "-"
if kind == "durable":
    log = open(log_path).read()
    m = re.search(r'tickets ledger closed.*mean_batch="([\d.]+)".*mean_commit_ms="([\d.]+)"', log)
    if m:
        batch, commit_ms = m.group(1), m.group(2)
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    in_ledger = conn.execute("SELECT sold FROM stock").fetchone()[0]
    # Warmup bookings are in the ledger too, so it holds at least the
    # measured confirmations.
    if in_ledger < r["responses"] - r["errors"]["total"]:
        sys.exit(f"ledger holds {in_ledger} bookings, fewer than the {r['responses']} confirmed")
print(rnd, kind, round(r["throughput"]["requests_per_sec"]),
      lat.get("p50_us", 0), lat.get("p99_us", 0), r["errors"]["total"],
      round(100 * (float(cpu1) - float(cpu0)) / (r["warmup_secs"] + r["elapsed_secs"])),
      batch, commit_ms, in_ledger)
EOF
}

: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
  measure "$round" memory
  measure "$round" durable
done

# What one synchronous 4 KiB write costs on the ledger's disk right now
# (dd oflag=dsync, 100 writes): a commit costs at least that, so
# CONNECTIONS / this is the most bookings per second any group commit can
# confirm when each connection waits for its answer.
fsync_ms=$(cd "$DB_DIR" && dd if=/dev/zero of=fsync-probe bs=4k count=100 oflag=dsync 2>&1 |
  awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s,") printf "%.2f\n", $(i - 1) * 10 }'; rm -f fsync-probe)

fmt_us() {
  awk -v us="$1" 'BEGIN {
    if (us >= 1000) printf "%.2f ms", us / 1000; else printf "%.0f µs", us }'
}

echo
echo "$(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "ledger in $DB_DIR ($(df -T "$DB_DIR" | awk 'NR == 2 { print $2 }')): a synchronous 4 KiB write takes ${fsync_ms:-?} ms after the runs," \
  "so at most $(awk -v c="$CONNECTIONS" -v f="${fsync_ms:-0}" 'BEGIN { if (f > 0) printf "%d", c * 1000 / f; else print "?" }') durable bookings/s with $CONNECTIONS connections"
echo "reqresp bench -c $CONNECTIONS -m 'book ticket' --warmup $WARMUP --duration $DURATION"
echo
echo "| round | ledger | bookings/s | p50 | p99 | errors | server CPU | mean commit group | mean commit time | bookings in ledger |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
while read -r round kind rps p50 p99 errors cpu batch commit ledger rest; do
  if [ "$rps" = FAILED ]; then
    echo "| $round | $kind | – | – | – | – | – | – | – | – ($errors $p50 $p99 $rest) |"
    continue
  fi
  [ "$commit" = - ] || commit="$commit ms"
  echo "| $round | $kind | $rps | $(fmt_us "$p50") | $(fmt_us "$p99") | $errors | $cpu % | $batch | $commit | $ledger |"
done <"$WORK/results"

echo
python3 - "$WORK/results" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    f = line.split()
    if f[2] != "FAILED":
        runs[(f[0], f[1])] = int(f[2])
ratios = []
for rnd in sorted({k[0] for k in runs}, key=int):
    if (rnd, "memory") in runs and (rnd, "durable") in runs:
        ratio = runs[(rnd, "durable")] / runs[(rnd, "memory")]
        ratios.append(ratio)
        print(f"round {rnd}: durable / memory = {ratio:.0%} of the bookings per second")
if ratios:
    print(f"median: {statistics.median(ratios):.0%} (target: at least 50%)")
else:
    print("no ratio: a run failed")
EOF
