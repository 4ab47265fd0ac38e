#!/usr/bin/env bash
# Benchmark (not a test): `reqresp analyze` beside `tshark -q -z conv,tcp`
# and `tcptrace -n` on one large synthetic capture, in the same run.
#
#   benches/analyze.sh                 # 2.4 million packets (default)
#   PACKETS=1000000 benches/analyze.sh
#   FILE=/some/capture.pcap benches/analyze.sh   # a capture of your own
#   REQRESP=/path/to/reqresp benches/analyze.sh  # another build of reqresp
#   MIX=1 benches/analyze.sh           # echo, HTTP, RESP and memcached mixed
#
# Builds reqresp in release mode, generates the capture with
# `examples/gen_capture.rs` if it is missing (target/bench/), runs each tool
# once under `/usr/bin/time -v` (Debian package `time`) with a time limit,
# and prints a Markdown table: wall seconds, packets per second, peak
# resident memory, and reqresp's ratios to the others. See docs/benchmark.md.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKETS=${PACKETS:-2400000}
MIX=${MIX:-}
if [ -n "$MIX" ]; then
  FILE=${FILE:-target/bench/mixed-${PACKETS}.pcap}
  GEN_ARGS=(--mix)
else
  FILE=${FILE:-target/bench/echo-${PACKETS}.pcap}
  GEN_ARGS=()
fi
TIMEOUT=${TIMEOUT:-900} # seconds per tool
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

die() { echo "analyze.sh: $*" >&2; exit 1; }
# The first non-empty line of a file (or stdin), at most 200 characters.
first_line() { grep -m1 -v '^[[:space:]]*$' "$@" | cut -c1-200 || true; }
[ -x /usr/bin/time ] || die "/usr/bin/time is missing: apt-get install time"
command -v python3 >/dev/null || die "python3 is missing"

echo "== building (release)" >&2
cargo build --release --quiet --bin reqresp --example gen_capture
REQRESP=${REQRESP:-target/release/reqresp}
GEN=target/release/examples/gen_capture

if [ ! -s "$FILE" ]; then
  echo "== generating $FILE ($PACKETS packets)" >&2
  mkdir -p "$(dirname "$FILE")"
  "$GEN" --packets "$PACKETS" "${GEN_ARGS[@]}" -o "$FILE.partial"
  mv "$FILE.partial" "$FILE"
fi
if command -v capinfos >/dev/null; then
  COUNT=$(capinfos -c -M -T -r "$FILE" | awk -F'\t' '{print $2}')
else
  COUNT=$PACKETS
fi
[[ "$COUNT" =~ ^[0-9]+$ ]] || die "cannot count the packets of $FILE"
SIZE_MB=$(( $(stat -L -c %s "$FILE") / 1000000 ))
echo "== $FILE: $COUNT packets, $SIZE_MB MB" >&2

# Is `reqresp analyze` there and working? Try it on a small file first.
reqresp_ready() {
  "$GEN" --packets 2000 -o "$WORK/small.pcap" 2>/dev/null
  if ! "$REQRESP" analyze "$WORK/small.pcap" --format json -o "$WORK/small.json" \
      >/dev/null 2>"$WORK/small.err"; then
    REQRESP_WHY="reqresp analyze failed on a small capture: $(first_line "$WORK/small.err")"
    return 1
  fi
  if ! python3 - "$WORK/small.json" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    doc = json.load(f)
conns = doc.get("connections")
sys.exit(0 if isinstance(conns, list) and len(conns) > 0 else 1)
EOF
  then
    REQRESP_WHY="reqresp analyze ran but its JSON has no connections"
    return 1
  fi
}

# run NAME CMD...: runs CMD under /usr/bin/time -v with the time limit;
# records seconds and peak MB in $WORK/NAME.result, or why it failed.
run() {
  local name=$1; shift
  echo "== $name: $*" >&2
  local status=0 start end
  start=$(date +%s%N)
  timeout "$TIMEOUT" /usr/bin/time -v -o "$WORK/$name.time" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
  end=$(date +%s%N)
  if [ "$status" -eq 124 ]; then
    echo "timed out after ${TIMEOUT}s" >"$WORK/$name.failed"; return
  elif [ "$status" -ne 0 ]; then
    echo "exit $status: $(grep -v '^Running as user' "$WORK/$name.err" | first_line)" >"$WORK/$name.failed"; return
  fi
  # Wall time from the clock around the run (/usr/bin/time rounds to
  # 10 ms); peak resident memory from /usr/bin/time.
  awk -v ns=$((end - start)) '
    /Maximum resident set size/ { kb = $NF }
    END { printf "%.3f %.1f\n", ns / 1e9, kb / 1024 }
  ' "$WORK/$name.time" >"$WORK/$name.result"
}

if reqresp_ready; then
  run reqresp "$REQRESP" analyze "$FILE" --format json -o /dev/null
else
  echo "$REQRESP_WHY" >"$WORK/reqresp.failed"
  echo "== reqresp: skipped: $REQRESP_WHY" >&2
fi
if command -v tshark >/dev/null; then
  run tshark tshark -q -z conv,tcp -r "$FILE"
else
  echo "tshark is not installed" >"$WORK/tshark.failed"
fi
if command -v tcptrace >/dev/null; then
  run tcptrace tcptrace -n "$FILE"
else
  echo "tcptrace is not installed" >"$WORK/tcptrace.failed"
fi

# Sanity: each tool saw the whole file.
if [ -s "$WORK/tcptrace.result" ]; then
  seen=$(awk '/packets seen/ {print $1; exit}' "$WORK/tcptrace.out")
  [ "$seen" = "$COUNT" ] || echo "warning: tcptrace saw $seen packets of $COUNT" >&2
fi
if [ -s "$WORK/tshark.result" ]; then
  grep -q "TCP Conversations" "$WORK/tshark.out" || echo "warning: tshark printed no conversation table" >&2
fi

echo
echo "Capture: $COUNT packets ($SIZE_MB MB), $(nproc) CPUs, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo
echo "| tool | command | seconds | packets/s | peak MB |"
echo "|---|---|---:|---:|---:|"
row() {
  local name=$1 cmd=$2
  if [ -s "$WORK/$name.result" ]; then
    read -r secs mb <"$WORK/$name.result"
    awk -v n="$name" -v c="$cmd" -v s="$secs" -v m="$mb" -v p="$COUNT" \
      'BEGIN { r = (s > 0) ? p / s : 0; printf "| %s | `%s` | %.3f | %d | %.0f |\n", n, c, s, r, m }'
  else
    echo "| $name | \`$cmd\` | – | – | – ($(cat "$WORK/$name.failed")) |"
  fi
}
row reqresp "reqresp analyze FILE --format json -o /dev/null"
row tshark "tshark -q -z conv,tcp -r FILE"
row tcptrace "tcptrace -n FILE"

if [ -s "$WORK/reqresp.result" ]; then
  read -r r_secs r_mb <"$WORK/reqresp.result"
  echo
  for other in tshark tcptrace; do
    [ -s "$WORK/$other.result" ] || continue
    read -r o_secs o_mb <"$WORK/$other.result"
    awk -v o="$other" -v rs="$r_secs" -v rm="$r_mb" -v os="$o_secs" -v om="$o_mb" 'BEGIN {
      speed = (rs > 0) ? os / rs : 0
      printf "reqresp vs %s: %.1f× the packets/s, %.2f× the peak memory (%.0f MB vs %.0f MB)\n", o, speed, rm / om, rm, om
    }'
  done
else
  echo
  echo "reqresp: not measured: $(cat "$WORK/reqresp.failed")"
fi
