#!/usr/bin/env bash
# Makes the local base image reqresp-base:bookworm without pulling anything:
# debootstrap a minimal Debian bookworm (with libpcap, and python3-minimal
# for the original lab's server.py and client.py) into a folder, tar it,
# `docker import` the tarball. docker/Dockerfile.offline builds FROM it.
#
# Cached at two levels so re-runs are fast:
#   1. the image: nothing is done when it already exists with the same
#      package list (a label on the image records it);
#   2. the rootfs tarball in $REQRESP_CACHE_DIR (default /var/cache/reqresp),
#      named after the package list: when the image is gone (docker system
#      prune, a fresh engine) it is re-imported in seconds instead of
#      debootstrapped again (minutes).
#
# Needs root (debootstrap), debootstrap, and http access to a Debian mirror
# only when nothing is cached.
#
# Environment:
#   REQRESP_BASE_IMAGE  image tag to make      (default reqresp-base:bookworm)
#   REQRESP_CACHE_DIR   where the tarball lives (default /var/cache/reqresp)
#   DEBIAN_MIRROR       mirror for debootstrap  (default http://deb.debian.org/debian)
#   REQRESP_BASE_PACKAGES  packages besides minbase, comma-separated
#                       (default libpcap0.8,python3-minimal; the images'
#                       sizes with and without Python are in docs/tutorial.md)
#   REQRESP_BASE_REBUILD=1  ignore both caches and debootstrap again
set -euo pipefail

image=${REQRESP_BASE_IMAGE:-reqresp-base:bookworm}
cache=${REQRESP_CACHE_DIR:-/var/cache/reqresp}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
# libpcap for `reqresp capture`; python3-minimal (the interpreter and a core
# standard library with socket, no pip, about 20 MB) for the original lab's
# `python server.py` and `python client.py`; minbase already has coreutils
# (sleep) and bash. Keep this list in step with docker/runtime-setup.sh.
packages=${REQRESP_BASE_PACKAGES:-libpcap0.8,python3-minimal}
# The cache and the image say which packages they hold, so adding one here
# makes the next run build a new base instead of reusing an older one.
tarball=$cache/reqresp-base-$suite-${packages//,/-}.tar
label=org.reqresp.base.packages

log() { echo "docker-base: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# docker import, with the package list as a label.
import_base() {
    docker import --message "reqresp base: debootstrap minbase $suite + $packages" \
        --change "LABEL $label=$packages" "$tarball" "$image" >/dev/null
}

if [[ ${REQRESP_BASE_REBUILD:-0} != 1 ]]; then
    if have=$(docker image inspect -f "{{index .Config.Labels \"$label\"}}" "$image" 2>/dev/null); then
        if [[ $have == "$packages" ]]; then
            log "$image already exists with $packages, nothing to do"
            exit 0
        fi
        log "$image exists but holds '${have:-libpcap0.8}', not '$packages': making it again"
    fi
    if [[ -s $tarball ]]; then
        log "importing cached rootfs $tarball as $image"
        import_base
        exit 0
    fi
fi

[[ $(id -u) == 0 ]] || die "debootstrap needs root; run as root (or with sudo)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap)"
mkdir -p "$cache" || die "cannot create the cache folder $cache (set REQRESP_CACHE_DIR)"

work=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "debootstrap --variant=minbase $suite from $mirror (a few minutes)"
start=$SECONDS
if ! debootstrap --variant=minbase --include="$packages" "$suite" "$work/root" "$mirror" \
    >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    die "debootstrap failed (full log above); check that $mirror is reachable or set DEBIAN_MIRROR"
fi
# What a container never needs: package lists and caches, docs, man pages.
rm -rf "$work/root/var/lib/apt/lists/"* "$work/root/var/cache/apt/"*.bin \
    "$work/root/var/cache/apt/archives/"*.deb "$work/root/usr/share/doc/"* \
    "$work/root/usr/share/man/"* "$work/root/usr/share/info/"*
log "debootstrap took $((SECONDS - start)) s"

# Write the tarball atomically so an interrupted run never leaves half a cache.
tar -C "$work/root" --numeric-owner -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$tarball"
log "cached rootfs at $tarball ($(du -h "$tarball" | cut -f1))"
import_base
log "imported $image ($(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.1f MB", $1 / 1e6}'))"
