#!/usr/bin/env bash
# Benchmark (not a test): `reqresp server` against the servers a user would
# pick instead, side by side in one run, interleaved round by round:
#
#   - a plain tokio echo server (benches/tokio_echo.rs, the 30 lines a Rust
#     user writes: #[tokio::main], a task per connection, read_until, write_all),
#   - sockperf ping-pong with its own server (`sockperf sr` / `sockperf pp`),
#   - redis-server (inline `PING`, answered `+PONG`).
#
#   benches/server.sh                        # 3 rounds, 5 s per load
#   ROUNDS=5 DURATION=10 benches/server.sh
#   REQRESP=/path/to/reqresp benches/server.sh   # another build of reqresp
#   ONLY=ping benches/server.sh              # only the 1-connection part (ping|many)
#
# Loads (64-byte line requests, `reqresp bench` as the generator):
#   1. one connection, ping-pong, closed loop: server and generator on the
#      same CPU ("same core", CPU 0) and on different CPUs ("split", server
#      on CPU 1, generator on CPU 0): reqresp, tokio echo, sockperf
#      (`sockperf pp --full-rtt`, its own client and server, 64-byte messages).
#   2. 64 connections without pipelining, and 64 x 16 pipelined (server on
#      CPU 1, generator on CPU 0): reqresp, tokio echo, redis-server.
#   3. for every load, the server's CPU time (user + system, all threads)
#      from /proc/PID/stat, divided by the requests answered.
#
# Each server is started fresh per load on 127.0.0.1, stopped by its PID;
# every load runs under `timeout`. `reqresp server` runs with its defaults
# (limits, request/first-byte/idle timeouts, slot reclaim, drain all on),
# only --max-connections raised to 4096 and --listen set.
# Prints the machine, one line per load as it runs, then Markdown tables of
# medians over the rounds and of reqresp's ratios. See docs/benchmark-server.md.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-64}
ONLY=${ONLY:-all}
# Seconds one load may take before it is killed.
LIMIT=$((DURATION + 30))
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "server.sh: $*" >&2; exit 1; }
for tool in sockperf redis-server taskset python3 timeout; do
  command -v "$tool" >/dev/null || die "$tool is missing (Debian: apt-get install sockperf redis-server util-linux python3 coreutils)"
done
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs to pin server and generator apart (nproc says $(nproc))"

echo "== building (release)" >&2
# Two builds: an example brings in the dev-dependencies, whose tokio has
# `test-util` (a slower clock); reqresp is measured as users build it.
cargo build --release --quiet --example tokio_echo
cargo build --release --quiet --bin reqresp
REQRESP=${REQRESP:-target/release/reqresp}
TOKIO_ECHO=target/release/examples/tokio_echo

# A free loopback TCP port (for servers that cannot take port 0).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server KIND CPU: starts it pinned to CPU, sets SERVER_PID and PORT.
start_server() {
  local kind=$1 cpu=$2 out="$WORK/server.out"
  : >"$out"
  case $kind in
    reqresp)
      taskset -c "$cpu" "$REQRESP" server --listen 127.0.0.1:0 --max-connections 4096 \
        >"$out" 2>"$WORK/server.err" & ;;
    tokio)
      taskset -c "$cpu" "$TOKIO_ECHO" 127.0.0.1:0 >"$out" 2>"$WORK/server.err" & ;;
    redis)
      PORT=$(free_port)
      taskset -c "$cpu" redis-server --bind 127.0.0.1 --port "$PORT" --save '' --appendonly no \
        --protected-mode no --maxclients 4096 --dir "$WORK" >"$out" 2>"$WORK/server.err" & ;;
    sockperf)
      PORT=$(free_port)
      taskset -c "$cpu" sockperf sr --tcp -i 127.0.0.1 -p "$PORT" >"$out" 2>"$WORK/server.err" & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    case $kind in
      reqresp | tokio)
        PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$out")
        [ -n "$PORT" ] && return ;;
      redis) grep -q 'Ready to accept' "$out" && return ;;
      sockperf)
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" \
          2>/dev/null && return ;;
    esac
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  die "$kind server did not start: $(head -c 300 "$WORK/server.err") $(head -c 300 "$out")"
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# CPU ticks (user + system, all threads) a process has used, from /proc/PID/stat.
cpu_ticks() {
  awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

# run LOAD KIND ROUND SERVER_CPU CLIENT_CPU CONNECTIONS PIPELINE:
# one load against a fresh server; appends a line to $WORK/results:
# load kind round p50_us p99_us req_per_sec answered server_cpu_secs errors
run() {
  local load=$1 kind=$2 round=$3 scpu=$4 ccpu=$5 conns=$6 pipeline=$7
  local name="$load-$kind-$round" status=0 t0 t1
  start_server "$kind" "$scpu"
  t0=$(cpu_ticks "$SERVER_PID")
  if [ "$kind" = sockperf ]; then
    timeout "$LIMIT" taskset -c "$ccpu" sockperf pp --tcp -i 127.0.0.1 -p "$PORT" \
      -t "$DURATION" -m "$SIZE" --full-rtt >"$WORK/$name.out" 2>&1 || status=$?
  else
    local msg=(--size "$SIZE")
    [ "$kind" = redis ] && msg=(--message PING --expect +PONG)
    timeout "$LIMIT" taskset -c "$ccpu" "$REQRESP" bench "127.0.0.1:$PORT" -c "$conns" \
      --pipeline "$pipeline" "${msg[@]}" --duration "$DURATION" \
      --format json >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
  fi
  t1=$(cpu_ticks "$SERVER_PID")
  stop_server
  python3 - "$WORK/$name.out" "$load" "$kind" "$round" "$t0" "$t1" "$(getconf CLK_TCK)" "$status" \
    >>"$WORK/results" <<'EOF'
import json, re, sys
path, load, kind, rnd, t0, t1, hz, status = sys.argv[1:]
cpu = (int(t1) - int(t0)) / int(hz)
text = open(path, errors="replace").read()
try:
    if kind == "sockperf":
        p50 = float(re.search(r"percentile 50\.000 =\s*([\d.]+)", text).group(1))
        p99 = float(re.search(r"percentile 99\.000 =\s*([\d.]+)", text).group(1))
        m = re.search(r"\[Valid Duration\] RunTime=([\d.]+) sec; SentMessages=(\d+); ReceivedMessages=(\d+)", text)
        secs, answered = float(m.group(1)), int(m.group(3))
        # Counted over the whole run, warm-up included, like the CPU.
        total = re.search(r"\[Total Run\] RunTime=[\d.]+ sec; Warm up time=\d+ msec; SentMessages=(\d+); ReceivedMessages=(\d+)", text)
        all_answered = int(total.group(2)) if total else answered
        print(load, kind, rnd, p50, p99, round(answered / secs), all_answered, cpu, 0)
    else:
        r = json.loads(text)
        lat = r["latency"] or {}
        print(load, kind, rnd, lat.get("p50_us", 0), lat.get("p99_us", 0),
              round(r["throughput"]["requests_per_sec"]), r["responses"], cpu, r["errors"]["total"])
except Exception as e:  # a failed load is shown, not hidden
    print(load, kind, rnd, "FAILED", f"exit={status}", repr(e)[:80].replace(" ", "_"))
EOF
  tail -n 1 "$WORK/results" >&2
}

echo "== machine"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "cpus: $(nproc) x $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo); kernel $(uname -r); $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$REQRESP" = target/release/reqresp ]; then
  version="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes')"
else
  version="$REQRESP"
fi
echo "reqresp $version; $(rustc --version); tokio $(awk '/^name = "tokio"$/ {getline; print $3; exit}' Cargo.lock | tr -d '"')"
echo "$(redis-server --version | cut -d' ' -f1-3); $(sockperf --version 2>&1 | head -1)"
echo "loads: ${DURATION} s each, ${ROUNDS} rounds interleaved, ${SIZE}-byte line requests"
echo

: >"$WORK/results"
for round in $(seq "$ROUNDS"); do
  if [ "$ONLY" != many ]; then
    for kind in reqresp tokio sockperf; do run ping-same "$kind" "$round" 0 0 1 1; done
    for kind in reqresp tokio sockperf; do run ping-split "$kind" "$round" 1 0 1 1; done
  fi
  if [ "$ONLY" != ping ]; then
    for kind in reqresp tokio redis; do run c64 "$kind" "$round" 1 0 64 1; done
    for kind in reqresp tokio redis; do run c64x16 "$kind" "$round" 1 0 64 16; done
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

python3 - "$WORK/results" <<'EOF'
import statistics, sys
rows = {}
failed = []
for line in open(sys.argv[1]):
    f = line.split()
    if f[3] == "FAILED":
        failed.append(line.strip()); continue
    load, kind = f[0], f[1]
    p50, p99, rps, answered, cpu, errors = float(f[3]), float(f[4]), int(f[5]), int(f[6]), float(f[7]), int(f[8])
    rows.setdefault((load, kind), []).append(
        dict(p50=p50, p99=p99, rps=rps, cpu_us=1e6 * cpu / max(answered, 1), errors=errors))
LOADS = {"ping-same": "1 conn, same core", "ping-split": "1 conn, split cores",
         "c64": "64 conns", "c64x16": "64 conns x 16 pipelined"}
med = lambda xs: statistics.median(xs)
def m(load, kind, key):
    rs = rows.get((load, kind))
    return med([r[key] for r in rs]) if rs else None
print("Medians over the rounds (server CPU per request = server user+system CPU / requests answered):")
print()
print("| load | server | p50 | p99 | req/s | server CPU / request | errors |")
print("|---|---|---:|---:|---:|---:|---:|")
for load, name in LOADS.items():
    for kind in ("reqresp", "tokio", "sockperf", "redis"):
        if (load, kind) not in rows: continue
        rs = rows[(load, kind)]
        print(f"| {name} | {kind} | {m(load, kind, 'p50'):.1f} µs | {m(load, kind, 'p99'):.1f} µs | "
              f"{m(load, kind, 'rps'):.0f} | {m(load, kind, 'cpu_us'):.2f} µs | {sum(r['errors'] for r in rs)} |")
print()
print("reqresp / reference (medians; target in brackets):")
print()
print("| load | figure | / tokio echo | / sockperf | / redis |")
print("|---|---|---:|---:|---:|")
def ratio(load, key, ref):
    a, b = m(load, "reqresp", key), m(load, ref, key)
    return f"{a / b:.2f}" if a is not None and b else "–"
for load, key, figure, targets in (
        ("ping-same", "p50", "p50 round trip", ("≤ 1.05", "≤ 1.10", "")),
        ("ping-split", "p50", "p50 round trip", ("≤ 1.05", "≤ 1.10", "")),
        ("ping-same", "cpu_us", "server CPU / request", ("", "", "")),
        ("ping-split", "cpu_us", "server CPU / request", ("", "", "")),
        ("c64", "cpu_us", "server CPU / request", ("≤ 0.8", "", "≤ 0.8")),
        ("c64", "rps", "req/s", ("", "", "")),
        ("c64x16", "cpu_us", "server CPU / request", ("", "", "≤ 0.7")),
        ("c64x16", "rps", "req/s", ("", "", ""))):
    cells = []
    for ref, target in zip(("tokio", "sockperf", "redis"), targets):
        r = ratio(load, key, ref)
        cells.append(f"{r} ({target})" if target and r != "–" else r)
    print(f"| {LOADS[load]} | {figure} | " + " | ".join(cells) + " |")
for line in failed:
    print("FAILED:", line)
EOF
