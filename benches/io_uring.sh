#!/usr/bin/env bash
# Would io_uring pay for `reqresp server`? Measures, on this kernel, a minimal
# C line-echo server in two modes (benches/c_echo.c: epoll, and io_uring by
# raw system calls) beside reqresp and the plain tokio echo, interleaved
# round by round:
#   - server CPU per request (user + system, /proc/PID/stat) for 1 connection
#     (server and generator on CPU 0) and 64 connections (server on CPU 1);
#   - system calls per request of the two C modes (strace -f -c).
#
#   benches/io_uring.sh                     # 3 rounds, 40 000 / 200 000 requests
#   ROUNDS=5 N1=100000 N64=400000 benches/io_uring.sh
#
# Needs gcc, strace, taskset, python3, and a kernel with io_uring enabled.
# Servers are stopped by their PID; every load runs under `timeout`.
# See docs/benchmark-server.md ("io_uring").
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
N1=${N1:-40000}
N64=${N64:-200000}
WORK=$(mktemp -d)
PID=
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT
for tool in gcc strace taskset python3; do
  command -v "$tool" >/dev/null || { echo "io_uring.sh: $tool is missing" >&2; exit 1; }
done
gcc -O2 -o "$WORK/c_echo" benches/c_echo.c
cargo build --release --quiet --example tokio_echo
cargo build --release --quiet --bin reqresp
REQRESP=target/release/reqresp
TCK=$(getconf CLK_TCK)

start() { # KIND CPU [strace output]: sets PID and PORT
  local out="$WORK/out" wrap=()
  : >"$out"
  [ -n "${3:-}" ] && wrap=(strace -f -c -o "$3")
  case $1 in
    c-epoll) taskset -c "$2" "${wrap[@]}" "$WORK/c_echo" epoll >"$out" 2>/dev/null & ;;
    c-uring) taskset -c "$2" "${wrap[@]}" "$WORK/c_echo" uring >"$out" 2>/dev/null & ;;
    tokio) taskset -c "$2" target/release/examples/tokio_echo 127.0.0.1:0 >"$out" 2>/dev/null & ;;
    reqresp) taskset -c "$2" "$REQRESP" server --listen 127.0.0.1:0 --max-connections 4096 >"$out" 2>/dev/null & ;;
  esac
  PID=$!
  PORT=
  for _ in $(seq 200); do
    PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$out")
    [ -n "$PORT" ] && return
    sleep 0.05
  done
  echo "io_uring.sh: $1 did not start" >&2; exit 1
}

load() { # CONNS N: prints the responses
  timeout 300 taskset -c 0 "$REQRESP" bench "127.0.0.1:$PORT" -c "$1" -n "$2" --size 64 --format json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["responses"])'
}

cpu() { awk '{print $14 + $15}' "/proc/$PID/stat"; }

: >"$WORK/rows"
for round in $(seq "$ROUNDS"); do
  for kind in c-epoll c-uring reqresp tokio; do
    for spec in "1 0 $N1" "64 1 $N64"; do
      read -r conns scpu n <<<"$spec"
      start "$kind" "$scpu"
      before=$(cpu)
      answered=$(load "$conns" "$n")
      after=$(cpu)
      kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
      us=$(python3 -c "print(f'{($after - $before) / $TCK / max($answered, 1) * 1e6:.2f}')")
      echo "round $round: $kind, $conns conn(s): $us µs server CPU per request" >&2
      echo "$kind $conns $us" >>"$WORK/rows"
    done
  done
done

for kind in c-epoll c-uring; do
  for spec in "1 0 10000" "64 1 20000"; do
    read -r conns scpu n <<<"$spec"
    start "$kind" "$scpu" "$WORK/strace.$kind.$conns"
    load "$conns" "$n" >/dev/null
    # Stop the server (strace's child); strace then writes its table.
    kill "$(ps -o pid= --ppid "$PID" | head -1)" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true; PID=
    echo "$kind $conns $n" >>"$WORK/straced"
  done
done

python3 - "$WORK" <<'PY'
import statistics, sys
work = sys.argv[1]
rows = {}
for line in open(f"{work}/rows"):
    kind, conns, us = line.split()
    rows.setdefault((kind, conns), []).append(float(us))
med = {k: statistics.median(v) for k, v in rows.items()}
def calls(kind, conns, n):
    out = {}
    for line in open(f"{work}/strace.{kind}.{conns}"):
        f = line.split()
        if len(f) >= 5 and f[-1] not in ("total", "syscall") and f[3].isdigit():
            out[f[-1]] = int(f[3]) / n
    return ", ".join(f"{k} {v:.2f}" for k, v in sorted(out.items(), key=lambda kv: -kv[1]) if v >= 0.01)
straced = {(k, c): int(n) for k, c, n in (l.split() for l in open(f"{work}/straced"))}
print("| server | load | server CPU / request (median) | / tokio echo | system calls / request |")
print("|---|---|---:|---:|---|")
for kind in ("c-epoll", "c-uring", "reqresp", "tokio"):
    for conns in ("1", "64"):
        m = med[(kind, conns)]
        sc = calls(kind, conns, straced[(kind, conns)]) if (kind, conns) in straced else ""
        print(f"| {kind} | {conns} conn{'s' if conns != '1' else ''} | {m:.2f} µs | {m / med[('tokio', conns)]:.2f} | {sc} |")
PY
