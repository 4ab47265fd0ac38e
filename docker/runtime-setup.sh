#!/bin/sh
# Turns a Debian bookworm root filesystem into the reqresp runtime. Shared by
# docker/Dockerfile (FROM debian:bookworm-slim) and docker/Dockerfile.offline
# (FROM the local debootstrap base), so both images have the same layout:
#   /usr/local/bin/reqresp   the binary (copied by the Dockerfile afterwards)
#   user reqresp (10001)     runs the server and the client
#   /captures                where the capture service writes its pcap
#   /var/lib/reqresp         the tickets ledger (a volume in compose), owned
#                            by reqresp so a new volume is writable by it
set -eu

# libpcap for `reqresp capture`. debian:bookworm-slim lacks it; the offline
# base was debootstrapped with it, so that build needs no network.
if ! ls /usr/lib/*-linux-gnu/libpcap.so.0.8 >/dev/null 2>&1; then
    apt-get update
    apt-get install -y --no-install-recommends libpcap0.8
    rm -rf /var/lib/apt/lists/*
fi

# The non-root user, written directly: debootstrap's minbase has no useradd.
grep -q '^reqresp:' /etc/group || echo 'reqresp:x:10001:' >>/etc/group
grep -q '^reqresp:' /etc/passwd ||
    echo 'reqresp:x:10001:10001:reqresp:/home/reqresp:/usr/sbin/nologin' >>/etc/passwd
mkdir -p /home/reqresp /captures /var/lib/reqresp
chown 10001:10001 /home/reqresp /var/lib/reqresp
