#!/usr/bin/env bash
# Benchmark (not a test): `reqresp server` under hostile clients, on
# loopback, bounded in time.
#
#   benches/hostile.sh                         # 1000 slowloris + 500 silent, 20 s
#   SLOWLORIS=2000 SILENT=1000 DURATION=30 benches/hostile.sh
#   SERVER_ARGS="--max-connections 1024" benches/hostile.sh
#   REQRESP=/path/to/reqresp benches/hostile.sh  # another build
#
# Starts `reqresp server --listen 127.0.0.1:0` (default limits unless
# SERVER_ARGS says otherwise), then two load processes written below:
#
# - the attacker (Python asyncio): SLOWLORIS connections that each send one
#   byte of a never-finished line per second, and SILENT connections that
#   send nothing; each one reconnects as soon as the server closes it, so the
#   attack holds its size for the whole run;
# - a normal client (Python, blocking sockets): first alone for BASELINE
#   seconds (the yardstick), then, after a warm-up that lets the attack fill
#   the server, every INTERVAL_MS it opens a connection, sends
#   `hello`, reads the answer and closes, for DURATION seconds, and records
#   each try's latency (connect to answer) or its failure.
#
# Prints the normal client's answered ratio and latency percentiles, the
# attack's connection counts, the server's CPU and peak resident memory
# (VmHWM), and the kernel's listen-queue overflows during the run. See
# docs/benchmark-server.md.
set -euo pipefail
cd "$(dirname "$0")/.."

SLOWLORIS=${SLOWLORIS:-1000}
SILENT=${SILENT:-500}
DURATION=${DURATION:-20}
WARMUP=${WARMUP:-5}
BASELINE=${BASELINE:-10}
INTERVAL_MS=${INTERVAL_MS:-20}
SERVER_ARGS=${SERVER_ARGS:-}
# Whole run, killed past this: warm-up + duration + a minute.
LIMIT=$((BASELINE + WARMUP + DURATION + 60))
WORK=$(mktemp -d)
PIDS=()

cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

die() { echo "hostile.sh: $*" >&2; exit 1; }
command -v python3 >/dev/null || die "python3 is missing"

# Every connection is a descriptor on both sides: lift the usual 1024.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
need=$((SLOWLORIS + SILENT + 256))
[ "$(ulimit -n)" -ge "$need" ] || die "open-file limit $(ulimit -n) < $need: raise it (ulimit -Hn as root)"

echo "== building (release)" >&2
cargo build --release --quiet --bin reqresp
REQRESP=${REQRESP:-target/release/reqresp}

cat >"$WORK/attack.py" <<'EOF'
import asyncio, sys, time

host, port, slowloris, silent, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
stats = {"opened": 0, "closed_by_server": 0, "connect_failed": 0, "bytes": 0}

async def one(trickle):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats["connect_failed"] += 1
            await asyncio.sleep(0.05)
            continue
        stats["opened"] += 1
        try:
            while time.monotonic() < end:
                if trickle:
                    writer.write(b"x")
                    stats["bytes"] += 1
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=1.0)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break
            else:
                break
        except OSError:
            pass
        finally:
            writer.close()
        stats["closed_by_server"] += 1

async def main():
    tasks = [one(True) for _ in range(slowloris)] + [one(False) for _ in range(silent)]
    await asyncio.gather(*tasks)
    print(stats["opened"], stats["closed_by_server"], stats["connect_failed"], stats["bytes"])

asyncio.run(main())
EOF

cat >"$WORK/normal.py" <<'EOF'
import socket, sys, time

host, port, seconds, interval = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]) / 1000
ok, failed, latencies, reasons = 0, 0, [], {}
end = time.monotonic() + seconds
while time.monotonic() < end:
    started = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=2) as s:
            s.sendall(b"hello\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if data == b"Echo: hello\n":
            ok += 1
            latencies.append(time.monotonic() - started)
        else:
            failed += 1
            key = data[:40].decode(errors="replace").strip() or "closed without answer"
            reasons[key] = reasons.get(key, 0) + 1
    except OSError as e:
        failed += 1
        reasons[type(e).__name__] = reasons.get(type(e).__name__, 0) + 1
    pause = interval - (time.monotonic() - started)
    if pause > 0:
        time.sleep(pause)
latencies.sort()
def pct(p):
    return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000 if latencies else float("nan")
print(ok, failed, "%.2f" % pct(50), "%.2f" % pct(99), "%.2f" % (max(latencies) * 1000 if latencies else float("nan")))
for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]):
    print("  failure: %d x %s" % (v, k), file=sys.stderr)
EOF

overflows() { awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "ListenOverflows") c = i; h = 1 } else print $c }' /proc/net/netstat; }
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f\n", ($12 + $13) / hz }' "/proc/$1/stat"; }

# shellcheck disable=SC2086
: >"$WORK/server.out"
"$REQRESP" server --listen 127.0.0.1:0 $SERVER_ARGS >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
for _ in $(seq 100); do
  ADDR=$(sed -n 's/^listening on \([^ ]*\).*/\1/p' "$WORK/server.out")
  [ -n "$ADDR" ] && break
  sleep 0.1
done
[ -n "$ADDR" ] || die "server did not start: $(head -c 300 "$WORK/server.log")"
HOST=${ADDR%:*}
PORT=${ADDR##*:}
echo "== server $ADDR (pid $SERVER_PID) $SERVER_ARGS" >&2

# The same normal client first without the attack: on a shared machine its
# latency is mostly the machine's, and this is the yardstick.
echo "== normal client alone for ${BASELINE} s" >&2
python3 "$WORK/normal.py" "$HOST" "$PORT" "$BASELINE" "$INTERVAL_MS" >"$WORK/baseline.out" 2>/dev/null

overflow0=$(overflows)
timeout "$LIMIT" python3 "$WORK/attack.py" "$HOST" "$PORT" "$SLOWLORIS" "$SILENT" $((WARMUP + DURATION)) >"$WORK/attack.out" 2>"$WORK/attack.err" &
ATTACK_PID=$!
PIDS+=("$ATTACK_PID")
echo "== attack: $SLOWLORIS slowloris + $SILENT silent connections; warm-up ${WARMUP} s" >&2
sleep "$WARMUP"
cpu0=$(cpu_secs "$SERVER_PID")
echo "== normal client: one connection per try every ${INTERVAL_MS} ms for ${DURATION} s" >&2
python3 "$WORK/normal.py" "$HOST" "$PORT" "$DURATION" "$INTERVAL_MS" >"$WORK/normal.out" 2>"$WORK/normal.err"
cpu1=$(cpu_secs "$SERVER_PID")
hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")
wait "$ATTACK_PID" || true
overflow1=$(overflows)
kill "$SERVER_PID" 2>/dev/null || true
wait "$SERVER_PID" 2>/dev/null || true

read -r bok bfailed bp50 bp99 bmax <"$WORK/baseline.out"
read -r ok failed p50 p99 max <"$WORK/normal.out"
read -r opened closed connect_failed trickled <"$WORK/attack.out" || die "attack failed: $(head -c 300 "$WORK/attack.err")"
tries=$((ok + failed))
echo
echo "$(nproc) CPUs ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: reqresp server ${SERVER_ARGS:-(defaults)}; attack: $SLOWLORIS slowloris + $SILENT silent, reconnecting; normal client: ${DURATION} s, a try every ${INTERVAL_MS} ms"
echo
echo "| normal client | answered | p50 | p99 | max | server CPU | server peak RSS | attack connections opened | closed by the server | listen overflows |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
awk -v ok="$bok" -v t=$((bok + bfailed)) -v p50="$bp50" -v p99="$bp99" -v max="$bmax" 'BEGIN {
  printf "| alone | %d / %d (%.2f %%) | %s ms | %s ms | %s ms | | | | | |\n", ok, t, 100 * ok / t, p50, p99, max }'
awk -v ok="$ok" -v t="$tries" -v p50="$p50" -v p99="$p99" -v max="$max" -v c0="$cpu0" -v c1="$cpu1" -v d="$DURATION" \
    -v hwm="$hwm" -v o="$opened" -v c="$closed" -v ov=$((overflow1 - overflow0)) 'BEGIN {
  printf "| under attack | %d / %d (%.2f %%) | %s ms | %s ms | %s ms | %.0f %% | %s MB | %d | %d | %d |\n",
    ok, t, 100 * ok / t, p50, p99, max, 100 * (c1 - c0) / d, hwm, o, c, ov }'
if [ -s "$WORK/normal.err" ]; then echo; echo "normal client failures:"; cat "$WORK/normal.err"; fi
echo
echo "server log, connections closed by reason:"
grep -o 'reason=[^=]*' "$WORK/server.log" | sed 's/ [a-z_]*$//' | cut -c1-90 | sort | uniq -c | sort -rn | head -8
