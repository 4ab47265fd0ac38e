#!/bin/sh
# Turns a Debian bookworm root filesystem into the reqresp runtime. Shared by
# docker/Dockerfile (FROM debian:bookworm-slim) and docker/Dockerfile.offline
# (FROM the local debootstrap base), so both images have the same layout:
#   /usr/local/bin/reqresp   the binary (copied by the Dockerfile afterwards)
#   user reqresp (10001)     runs the server and the client
#   /captures                where the capture service writes its pcap
#   python, python3          Debian's python3-minimal, for the original lab's
#                            programs
#   /home/reqresp/server.py, client.py
#                            the original lab's programs (contrib/lab-python,
#                            copied by the Dockerfile), so its steps
#                            `... exec reqresp-server python server.py` and
#                            `... exec reqresp-client python client.py` work
#   /var/lib/reqresp         the tickets ledger (a volume in compose), owned
#                            by reqresp so a new volume is writable by it
set -eu

# libpcap for `reqresp capture` and python3-minimal (interpreter and core
# library, socket included; not the full python3, which is three times its
# size). debian:bookworm-slim lacks both; the offline base was debootstrapped
# with them (scripts/docker-base.sh), so that build needs no network.
missing=
ls /usr/lib/*-linux-gnu/libpcap.so.0.8 >/dev/null 2>&1 || missing="$missing libpcap0.8"
command -v python3 >/dev/null 2>&1 || missing="$missing python3-minimal"
if [ -n "$missing" ]; then
    apt-get update
    # shellcheck disable=SC2086 # a list of package names
    apt-get install -y --no-install-recommends $missing
    rm -rf /var/lib/apt/lists/*
fi
# `python`, as the original lab types it (Debian's python-is-python3 would
# pull in the full python3).
ln -sf "$(command -v python3)" /usr/local/bin/python

# The non-root user, written directly: debootstrap's minbase has no useradd.
grep -q '^reqresp:' /etc/group || echo 'reqresp:x:10001:' >>/etc/group
grep -q '^reqresp:' /etc/passwd ||
    echo 'reqresp:x:10001:10001:reqresp:/home/reqresp:/usr/sbin/nologin' >>/etc/passwd
mkdir -p /home/reqresp /captures /var/lib/reqresp
chown 10001:10001 /home/reqresp /var/lib/reqresp
