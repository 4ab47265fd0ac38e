#!/usr/bin/env bash
# Benchmark (not a test): does `reqresp watch` keep up with a loaded
# loopback server, and how late does an exchange reach the screen?
#
#   sudo benches/watch.sh                  # 64 connections, 10 s
#   CONNS=16 SECS=5 sudo benches/watch.sh
#   PERF_OUT=/tmp/watch.perf sudo benches/watch.sh   # also perf record watch
#   REQRESP=/tmp/reqresp-before sudo benches/watch.sh # that binary, no build
#   MODE=jsonl sudo benches/watch.sh       # JSON lines to a file, no screen
#
# In one run, against one `reqresp server` on loopback under
# `reqresp bench -c CONNS --duration SECS`: `tcpdump -w /dev/null` and
# `reqresp watch` (full screen, in a tmux pane 120×40) capture the same
# port at the same time. Prints a Markdown table: packets each captured,
# kernel drops each (their own counts), the CPU seconds of each and per
# packet (from /proc), watch's peak memory, the machine's load, and the
# delay from each newest response's capture timestamp to the frame that
# first showed it (p50/p99/max, written by watch where
# REQRESP_WATCH_DELAYS says). With MODE=jsonl, watch writes its JSON
# lines (stdout not a terminal) to a file instead, and the table gives the
# lines and bytes written instead of the screen delays. Needs root
# (capture), tcpdump, and tmux for the screen mode.
# Every step is bounded in time. See docs/benchmark.md.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${MODE:-screen}
case $MODE in screen | jsonl) ;; *) echo "watch.sh: MODE is screen or jsonl, not $MODE" >&2; exit 1 ;; esac
CONNS=${CONNS:-64}
SECS=${SECS:-10}
die() { echo "watch.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (live capture)"
[ "$MODE" = jsonl ] || command -v tmux >/dev/null || die "tmux is missing (the screen mode runs watch in a tmux pane; MODE=jsonl needs none)"
command -v tcpdump >/dev/null || die "tcpdump is missing"

if [ -n "${REQRESP:-}" ]; then
  # A binary given (e.g. the one before a change, to compare in one session).
  [ -x "$REQRESP" ] || die "REQRESP=$REQRESP is not an executable"
else
  echo "== building (release)" >&2
  cargo build --release --quiet --bin reqresp
  REQRESP=$(pwd)/target/release/reqresp
fi
WORK=$(mktemp -d)
SESSION=reqresp-watch-bench-$$
SERVER=""
TCPDUMP=""
WATCH_PID=""
cleanup() {
  [ "$MODE" = jsonl ] && [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
  tmux kill-session -t "$SESSION" 2>/dev/null || true
  [ -n "$TCPDUMP" ] && kill "$TCPDUMP" 2>/dev/null || true
  [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A free loopback port, then the server on it.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$REQRESP" server --listen "127.0.0.1:$PORT" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 100); do grep -q "listening on" "$WORK/server.out" && break; sleep 0.05; done
grep -q "listening on" "$WORK/server.out" || die "the server did not start"

tcpdump -i lo -n -w /dev/null "tcp port $PORT" 2>"$WORK/tcpdump.err" &
TCPDUMP=$!
if [ "$MODE" = jsonl ]; then
  "$REQRESP" watch -i lo --port "$PORT" --framing line >"$WORK/lines.jsonl" 2>"$WORK/watch.err" &
  WATCH_PID=$!
  for _ in $(seq 200); do grep -q "capturing on" "$WORK/watch.err" && break; sleep 0.05; done
  grep -q "capturing on" "$WORK/watch.err" || die "watch did not start: $(head -3 "$WORK/watch.err")"
else
  tmux new-session -d -s "$SESSION" -x 120 -y 40 \
    "REQRESP_WATCH_DELAYS=$WORK/delays '$REQRESP' watch -i lo --port $PORT --framing line 2>'$WORK/watch.err'; echo WATCH-DONE; sleep 600"
  for _ in $(seq 200); do
    tmux capture-pane -p -t "$SESSION" | grep -q "waiting for a TCP connection" && break
    sleep 0.05
  done
  WATCH_PID=$(pgrep -f -n "watch -i lo --port $PORT" || true)
  [ -n "$WATCH_PID" ] || die "watch did not start"
fi
grep -q "listening on" "$WORK/tcpdump.err" || sleep 0.5

PERF_PID=""
if [ -n "${PERF_OUT:-}" ]; then
  # Where watch spends its CPU, by thread (a release build has no frame
  # pointers, so look at self time):
  #   perf report -i "$PERF_OUT" --sort pid,symbol --no-children -g none
  perf record -F 999 -g -p "$WATCH_PID" -o "$PERF_OUT" 2>"$WORK/perf.err" &
  PERF_PID=$!
fi
echo "== reqresp bench -c $CONNS --duration $SECS" >&2
timeout $((SECS + 30)) "$REQRESP" bench "127.0.0.1:$PORT" -c "$CONNS" --duration "$SECS" \
  --format json >"$WORK/bench.json" 2>"$WORK/bench.err" || die "bench failed: $(head -3 "$WORK/bench.err")"

# Let both drain what the kernel holds, then stop them.
sleep 2
cpu_of() { awk '{print ($14 + $15) / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
sys_of() { awk '{print $15 / '"$(getconf CLK_TCK)"'}' "/proc/$1/stat"; }
CPU=$(cpu_of "$WATCH_PID")
SYS=$(sys_of "$WATCH_PID")
TD_CPU=$(cpu_of "$TCPDUMP")
TD_SYS=$(sys_of "$TCPDUMP")
RSS=$(awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$WATCH_PID/status")
if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; fi
if [ "$MODE" = jsonl ]; then
  kill -INT "$WATCH_PID"
  timeout 60 tail --pid="$WATCH_PID" -f /dev/null || die "watch did not stop within 60 s of SIGINT"
  WATCH_PID=""
else
  tmux send-keys -t "$SESSION" q
  for _ in $(seq 200); do
    tmux capture-pane -p -t "$SESSION" | grep -q WATCH-DONE && break
    sleep 0.05
  done
fi
kill -INT "$TCPDUMP"
wait "$TCPDUMP" 2>/dev/null || true
TCPDUMP=""

td_captured=$(awk '/packets captured/ {print $1}' "$WORK/tcpdump.err")
td_dropped=$(awk '/dropped by kernel/ {print $1}' "$WORK/tcpdump.err")
w_line=$(grep "packets captured" "$WORK/watch.err" || echo "? packets captured, ? dropped")
w_captured=$(echo "$w_line" | sed -E 's/.*: ([0-9?]+) packets captured.*/\1/')
w_dropped=$(echo "$w_line" | sed -E 's/.*, ([0-9?]+) dropped by kernel.*/\1/')
requests=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("requests", d.get("completed", "?")))' "$WORK/bench.json" 2>/dev/null || echo "?")
delays=$(python3 - "$WORK/delays" <<'EOF'
import sys
try:
    d = sorted(float(l) for l in open(sys.argv[1]) if l.strip())
except FileNotFoundError:
    d = []
if not d:
    print("n/a | n/a | n/a | 0")
else:
    q = lambda p: d[min(len(d) - 1, int(p / 100 * len(d)))]
    print(f"{q(50)/1000:.1f} | {q(99)/1000:.1f} | {d[-1]/1000:.1f} | {len(d)}")
EOF
)

echo
echo "reqresp bench -c $CONNS --duration $SECS on loopback: $requests requests"
echo
echo "| tool | packets captured | dropped by kernel |"
echo "| --- | ---: | ---: |"
echo "| tcpdump -w /dev/null | $td_captured | $td_dropped |"
echo "| reqresp watch ($MODE) | $w_captured | $w_dropped |"
echo
per_packet() { python3 -c 'import sys; c, n = sys.argv[1:]; print(f"{float(c) * 1e6 / int(n):.2f}" if n.isdigit() and int(n) else "?")' "$1" "$2"; }
echo "| CPU time | tcpdump | reqresp watch |"
echo "| --- | ---: | ---: |"
echo "| seconds over the run | $TD_CPU | $CPU |"
echo "| of which in the kernel | $TD_SYS | $SYS |"
echo "| µs per packet captured | $(per_packet "$TD_CPU" "$td_captured") | $(per_packet "$CPU" "$w_captured") |"
echo
echo "watch's peak resident memory: $RSS MB"
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
if [ "$MODE" = jsonl ]; then
  echo
  echo "JSON lines written: $(wc -l <"$WORK/lines.jsonl"), $(( $(stat -c %s "$WORK/lines.jsonl") / 1000000 )) MB"
  exit 0
fi
echo
echo "| capture → screen delay p50 (ms) | p99 (ms) | max (ms) | frames measured |"
echo "| ---: | ---: | ---: | ---: |"
echo "| $delays |"
