#!/usr/bin/env bash
# Makes the pictures of docs/tutorial.md and docs/tutorial.id.md from real
# captures, with the current code, so they stay true to it:
#
#   docs/images/framing-merged.svg/.png  two requests in one segment (a client
#                                        that writes two lines at once)
#   docs/images/framing-split.svg/.png   one 3,091-byte request over several
#                                        segments, and its response
#   docs/images/framing-tshark.txt       the split capture as tshark shows it
#                                        with contrib/wireshark/reqresp.lua
#   docs/images/framing-*.pcap           the two captures, for the exercises
#
# Two network namespaces joined by a veth pair (Ethernet MTU 1500 and no
# segmentation offload, so a long message needs several segments, as on a
# wire between two machines), a
# `reqresp server` in one, `reqresp capture` on its interface, the clients in
# the other. Everything it makes is removed on every way out.
#
# Needs: root (namespaces, capture), iproute2, nc (netcat-openbsd),
# rsvg-convert (librsvg2-bin) for the PNGs, tshark for the text rendering.
#
# Environment:
#   REQRESP_BIN         the reqresp binary (default: target/release/reqresp,
#                       built with cargo build --release when missing)
#   REQRESP_IMAGES_DIR  where to write (default docs/images; the test
#                       tests/e2e/compose.rs writes into a scratch folder)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${REQRESP_IMAGES_DIR:-$repo/docs/images}
say() { echo "docs-images: $*" >&2; }
die() {
    say "error: $*"
    exit 1
}

[[ $(id -u) == 0 ]] || die "run as root (network namespaces and capture): sudo $0"
for tool in ip nc rsvg-convert tshark timeout; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
bin=${REQRESP_BIN:-$repo/target/release/reqresp}
if [[ ! -x $bin ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
[[ -x $bin ]] || die "no reqresp binary at $bin"

# Names unique to this run (interface names stay within 15 bytes).
id=$$
srv=rrdoc-$id-s
cli=rrdoc-$id-c
tmp=$(mktemp -d /tmp/reqresp-docs.XXXXXX)
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$srv"
ip netns add "$cli"
ip link add "rrd$id" netns "$srv" type veth peer name "rrd${id}c" netns "$cli"
ip -n "$srv" link set "rrd$id" name eth0
ip -n "$cli" link set "rrd${id}c" name eth0
for ns in "$srv" "$cli"; do
    ip -n "$ns" link set eth0 addrgenmode none 2>/dev/null || true
    # One segment per packet, as on a wire between two machines: without
    # this the kernel hands a veth its large GSO packets unsplit (the Docker
    # lab's bridge does too), and the capture shows one 3,091-byte segment.
    ip -n "$ns" link set eth0 gso_max_segs 1 gso_max_size 1500
    ip -n "$ns" link set lo up
done
ip -n "$srv" addr add 10.223.0.2/24 dev eth0
ip -n "$cli" addr add 10.223.0.3/24 dev eth0
ip -n "$srv" link set eth0 up
ip -n "$cli" link set eth0 up

ip netns exec "$srv" "$bin" server --listen 10.223.0.2:2222 >"$tmp/server.out" 2>"$tmp/server.log" &
pids+=($!)
for _ in $(seq 100); do
    grep -q 'listening on' "$tmp/server.out" && break
    sleep 0.1
done
grep -q 'listening on' "$tmp/server.out" || die "the server did not start: $(cat "$tmp/server.log")"

# capture NAME COMMAND...: captures on the server's eth0 while COMMAND runs
# in the client's namespace.
capture() {
    local name=$1 pid
    shift
    ip netns exec "$srv" "$bin" capture -i eth0 -f 'tcp port 2222' -w "$tmp/$name.pcap" \
        >/dev/null 2>"$tmp/$name.capture.log" &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        grep -q 'capturing on' "$tmp/$name.capture.log" && break
        sleep 0.1
    done
    grep -q 'capturing on' "$tmp/$name.capture.log" || die "capture did not start: $(cat "$tmp/$name.capture.log")"
    timeout 30 ip netns exec "$cli" "$@" >"$tmp/$name.client.out"
    # libpcap hands packets over in blocks: let the teardown in.
    sleep 1.5
    kill -INT "$pid"
    wait "$pid" || die "capture $name failed: $(cat "$tmp/$name.capture.log")"
}

capture merged sh -c "printf 'hello\nworld\n' | nc -N 10.223.0.2 2222"
capture split "$bin" client 10.223.0.2:2222 "$(seq -s + 800)"

mkdir -p "$out"
for name in merged split; do
    cp "$tmp/$name.pcap" "$out/framing-$name.pcap"
    # From inside docs/images, so the pictures' titles name the kept file.
    (cd "$out" && "$bin" analyze "framing-$name.pcap" --format svg -o "framing-$name.svg" 2>/dev/null)
    rsvg-convert --background-color=white -o "$out/framing-$name.png" "$out/framing-$name.svg"
    "$bin" analyze "$tmp/$name.pcap" >"$tmp/$name.txt"
done
grep -q 'arrived in one segment' "$tmp/merged.txt" ||
    die "the merged capture does not show two messages in one segment: $(cat "$tmp/merged.txt")"
grep -q 'segments: one recv() may return only part of it' "$tmp/split.txt" ||
    die "the split capture does not show a message over several segments: $(cat "$tmp/split.txt")"
tshark -X "lua_script:$repo/contrib/wireshark/reqresp.lua" -r "$tmp/split.pcap" \
    -T fields -E header=y -e frame.number -e ip.src -e ip.dst -e tcp.len \
    -e reqresp.role -e reqresp.length 2>/dev/null >"$out/framing-tshark.txt"
say "wrote $(cd "$out" && ls framing-* | tr '\n' ' ')into $out/"
