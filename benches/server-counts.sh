#!/usr/bin/env bash
# Repeatable per-request costs of `reqresp server` and the plain tokio echo
# (benches/tokio_echo.rs), for a machine too noisy for wall-clock figures:
# instructions per request (valgrind --tool=callgrind, the whole process,
# all threads) and system calls per request (strace -c -f).
#
#   benches/server-counts.sh   # 1 conn and 64 conns x 20000 requests, 64 conns x 16 pipelined x 200000
#   N1=5000 N64=50000 benches/server-counts.sh
#   NO_BUILD=1 REQRESP=/tmp/old/reqresp benches/server-counts.sh   # another build, as is
#
# Each server runs under the tool on 127.0.0.1; `reqresp bench -n N` is the
# load (64-byte line requests); counters are dumped (callgrind_control -d)
# right before and right after the load, so startup is not counted. Servers
# are stopped by PID; every load runs under `timeout`.
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-20000}
N64=${N64:-200000}
WORK=$(mktemp -d)
PID=
cleanup() { if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; fi; rm -rf "$WORK"; }
trap cleanup EXIT
for tool in valgrind callgrind_control strace; do
  command -v "$tool" >/dev/null || echo "server-counts.sh: $tool is missing (apt-get install valgrind strace)" >&2
done
# Two builds: an example brings in the dev-dependencies, whose tokio has
# `test-util` (a slower clock); reqresp is measured as users build it.
[ -n "${NO_BUILD:-}" ] || { cargo build --release --quiet --example tokio_echo &&
  cargo build --release --quiet --bin reqresp; }
REQRESP=${REQRESP:-target/release/reqresp}

server_cmd() {
  case $1 in
    reqresp) echo "$REQRESP server --listen 127.0.0.1:0 --max-connections 4096" ;;
    tokio) echo "target/release/examples/tokio_echo 127.0.0.1:0" ;;
  esac
}

wait_port() {
  for _ in $(seq 300); do
    PORT=$(sed -n 's/^listening on 127.0.0.1://p' "$WORK/out")
    [ -n "$PORT" ] && return
    sleep 0.1
  done
  echo "server did not start: $(head -c 300 "$WORK/err")" >&2; exit 1
}

load() { # CONNS PIPELINE N
  timeout 300 "$REQRESP" bench "127.0.0.1:$PORT" -c "$1" --pipeline "$2" -n "$3" --size 64 \
    --format json | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["responses"], r["errors"]["total"])'
}

# Total instructions of the last dump in a callgrind output directory.
last_ir() { ls -t "$WORK"/cg.out.* | head -1 | xargs grep -h '^summary:' | awk '{print $2}'; }

echo "| server | load | instructions / request | syscalls / request | syscalls (top 4: name count/request) |"
echo "|---|---|---:|---:|---|"
for kind in reqresp tokio; do
  for spec in "1 1 $N1" "64 1 $N1" "64 16 $N64"; do
    set -- $spec
    # callgrind
    : >"$WORK/out"
    rm -f "$WORK"/cg.out.*
    # shellcheck disable=SC2046
    valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out.%p" $(server_cmd $kind) >"$WORK/out" 2>"$WORK/err" &
    PID=$!
    wait_port
    callgrind_control -z "$PID" >/dev/null 2>&1
    read -r answered errors < <(load "$1" "$2" "$3")
    callgrind_control -d "$PID" >/dev/null 2>&1
    sleep 0.5
    ir=$(last_ir)
    kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
    # strace
    : >"$WORK/out"
    # shellcheck disable=SC2046
    strace -f -c -o "$WORK/strace" $(server_cmd $kind) >"$WORK/out" 2>"$WORK/err" &
    PID=$!
    wait_port
    read -r answered2 errors2 < <(load "$1" "$2" "$3")
    # Stop the server (strace's child, by its PID); strace then writes its table.
    kill "$(ps -o pid= --ppid "$PID" | head -1)" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true; PID=
    python3 - "$WORK/strace" "$kind" "$1x$2" "$ir" "$answered" "$answered2" "$errors" "$errors2" <<'PY'
import sys
path, kind, load, ir, answered, answered2, e1, e2 = sys.argv[1:]
calls = {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[-1] not in ("total", "syscall") and f[3].isdigit():
        calls[f[-1]] = int(f[3])
total = sum(calls.values())
n2 = max(int(answered2), 1)
top = ", ".join(f"{k} {v / n2:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:4])
print(f"| {kind} | {load} | {int(ir) / max(int(answered), 1):,.0f} | {total / n2:.2f} | {top} |"
      + ("" if e1 == e2 == "0" else f" errors {e1}/{e2}"))
PY
  done
done
