#!/usr/bin/env bash
# Benchmark (not a test): `reqresp server` beside a reference echo server
# (Python asyncio, written below), both loaded by `reqresp bench` with the
# same settings in the same run.
#
#   benches/server.sh                          # 16 connections, 5 s per run
#   DURATION=10 CONNECTIONS=64 benches/server.sh
#   SIZE=1024 benches/server.sh                # request payload bytes
#   REQRESP=/path/to/reqresp benches/server.sh # another build of reqresp
#
# For each framing (line, length) and pipeline depth (1, 16), starts a fresh
# server on 127.0.0.1 (reqresp, then the reference), runs
# `reqresp bench --warmup W --duration D -c C --pipeline P` against it under
# /usr/bin/time, and prints a Markdown table: req/s, p50, p99, errors, CPU
# used by the server and by the generator, and the server's peak resident
# memory (VmHWM from /proc/PID/status), then reqresp's ratios to the
# reference. See docs/benchmark-server.md.
#
# The original lab server (Python, one blocking socket, one client at a
# time) cannot serve 16 connections at all, so the reference is a plain
# asyncio echo server: what a student would write next.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNECTIONS=${CONNECTIONS:-16}
SIZE=${SIZE:-16}
PIPELINES=${PIPELINES:-"1 16"}
FRAMINGS=${FRAMINGS:-"line length"}
# Seconds one run may take before it is killed: warmup + duration + a minute.
LIMIT=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { printf "%d", w + d + 60 }')
WORK=$(mktemp -d)
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "server.sh: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
command -v python3 >/dev/null || die "python3 is missing"

echo "== building (release)" >&2
cargo build --release --quiet --bin reqresp
REQRESP=${REQRESP:-target/release/reqresp}

# The reference: asyncio, one coroutine per connection, `Echo: <request>`
# in line or length framing, printing the same `listening on` line.
cat >"$WORK/ref_echo.py" <<'EOF'
import asyncio, sys

FRAMING = sys.argv[1]
MAX = 1 << 20

async def line(reader, writer):
    while True:
        request = await reader.readline()
        if not request.endswith(b"\n"):
            break
        writer.write(b"Echo: " + request)
        await writer.drain()

async def length(reader, writer):
    while True:
        try:
            size = int.from_bytes(await reader.readexactly(4), "big")
            if size > MAX:
                break
            request = await reader.readexactly(size)
        except asyncio.IncompleteReadError:
            break
        response = b"Echo: " + request
        writer.write(len(response).to_bytes(4, "big") + response)
        await writer.drain()

async def serve(reader, writer):
    try:
        await (line if FRAMING == "line" else length)(reader, writer)
    except (ConnectionError, asyncio.LimitOverrunError, ValueError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()

asyncio.run(main())
EOF

# start_server KIND FRAMING: starts it in the background, sets SERVER_PID
# and SERVER_ADDR from its `listening on` line.
start_server() {
  local kind=$1 framing=$2 out="$WORK/server.out"
  : >"$out"
  case $kind in
    reqresp) "$REQRESP" server --listen 127.0.0.1:0 --framing "$framing" \
               --max-connections 4096 >"$out" 2>"$WORK/server.err" & ;;
    reference) python3 "$WORK/ref_echo.py" "$framing" >"$out" 2>"$WORK/server.err" & ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    SERVER_ADDR=$(sed -n 's/^listening on //p' "$out")
    [ -n "$SERVER_ADDR" ] && return
    sleep 0.1
  done
  die "$kind server did not start: $(head -c 300 "$WORK/server.err")"
}

stop_server() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
}

# CPU seconds (user + system) a process has used, from /proc/PID/stat.
cpu_secs() {
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"
}

# measure KIND FRAMING PIPELINE: one run; appends a result line.
measure() {
  local kind=$1 framing=$2 pipeline=$3 name="$1-$2-p$3"
  start_server "$kind" "$framing"
  echo "== $name: $SERVER_ADDR" >&2
  local cpu0 cpu1 status=0
  cpu0=$(cpu_secs "$SERVER_PID")
  timeout "$LIMIT" /usr/bin/time -f "%e %U %S" -o "$WORK/$name.time" \
    "$REQRESP" bench "$SERVER_ADDR" --framing "$framing" -c "$CONNECTIONS" \
    --pipeline "$pipeline" --size "$SIZE" --warmup "$WARMUP" --duration "$DURATION" \
    --format json >"$WORK/$name.json" 2>"$WORK/$name.err" || status=$?
  cpu1=$(cpu_secs "$SERVER_PID")
  local hwm
  hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")
  stop_server
  if [ ! -s "$WORK/$name.json" ]; then
    echo "$kind $framing $pipeline FAILED exit $status: $(head -c 200 "$WORK/$name.err")" >>"$WORK/results"
    return
  fi
  python3 - "$WORK/$name.json" "$WORK/$name.time" "$kind" "$framing" "$pipeline" \
    "$cpu0" "$cpu1" "$hwm" >>"$WORK/results" <<'EOF'
import json, sys
report_path, time_path, kind, framing, pipeline, cpu0, cpu1, hwm = sys.argv[1:]
r = json.load(open(report_path))
wall, user, system = (float(x) for x in open(time_path).read().split()[-3:])
lat = r["latency"] or {}
print(kind, framing, pipeline,
      round(r["throughput"]["requests_per_sec"]),
      lat.get("p50_us", 0), lat.get("p99_us", 0),
      r["errors"]["total"],
      round(100 * (float(cpu1) - float(cpu0)) / wall),
      round(100 * (user + system) / wall),
      hwm)
EOF
}

: >"$WORK/results"
for framing in $FRAMINGS; do
  for pipeline in $PIPELINES; do
    measure reqresp "$framing" "$pipeline"
    measure reference "$framing" "$pipeline"
  done
done

fmt_us() {
  awk -v us="$1" 'BEGIN {
    if (us >= 1000) printf "%.2f ms", us / 1000; else printf "%.0f µs", us }'
}

echo
echo "$(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "reqresp bench -c $CONNECTIONS --size $SIZE --warmup $WARMUP --duration $DURATION; reference: Python $(python3 -c 'import sys; print(sys.version.split()[0])') asyncio"
echo
echo "| server | framing | pipeline | req/s | p50 | p99 | errors | server CPU | bench CPU | server peak RSS |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
while read -r kind framing pipeline rps p50 p99 errors scpu bcpu hwm rest; do
  if [ "$rps" = FAILED ]; then
    echo "| $kind | $framing | $pipeline | – | – | – | – | – | – | – ($errors $p50 $p99 $rest) |"
    continue
  fi
  echo "| $kind | $framing | $pipeline | $rps | $(fmt_us "$p50") | $(fmt_us "$p99") | $errors | $scpu % | $bcpu % | $hwm MB |"
done <"$WORK/results"

echo
for framing in $FRAMINGS; do
  for pipeline in $PIPELINES; do
    mine=$(awk -v f="$framing" -v p="$pipeline" '$1 == "reqresp" && $2 == f && $3 == p && $4 != "FAILED"' "$WORK/results")
    ref=$(awk -v f="$framing" -v p="$pipeline" '$1 == "reference" && $2 == f && $3 == p && $4 != "FAILED"' "$WORK/results")
    if [ -z "$mine" ] || [ -z "$ref" ]; then
      echo "$framing, pipeline $pipeline: no ratio (a run failed)"
      continue
    fi
    echo "$mine $ref" | awk '{
      printf "%s, pipeline %s: reqresp/reference = %.1f× the req/s, %.2f× the p50, %.2f× the p99, %.2f× the peak RSS\n",
        $2, $3, $4 / $14, $5 / $15, $6 / $16, $10 / $20 }'
  done
done
