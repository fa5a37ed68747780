#!/usr/bin/env bash
# Names (or fetches) a qemu-system-aarch64 >= 11 for the imx8mp_evk board: QEMU 10 does not deliver
# virtual interrupts to EL1 on -machine imx8mp-evk, and Debian 12's own QEMU (7.2) has no such machine.
# Uses $QEMU, else a qemu-system-aarch64 >= 11 on PATH, else the cached one; without any of them it
# debootstraps a minimal Debian trixie tree into the cache (about 2 minutes and 300 MB) and installs
# qemu-system-arm from trixie-backports there. The host runs that QEMU through the tree's own dynamic
# loader and libraries, so no chroot is needed at run time.
# Prints the path and version of the QEMU to use; exits non-zero with a one-line reason if there is none.
set -euo pipefail
min_major=11
cache=${XDG_CACHE_HOME:-$HOME/.cache}/lazyfp
tree=$cache/qemu-trixie
wrapper=$cache/qemu-system-aarch64
mirror=http://deb.debian.org/debian

# major version of the QEMU binary $1, empty if it does not run
qemu_major() {
    "$1" --version 2>/dev/null | sed -n '1s/^QEMU emulator version \([0-9]*\)\..*/\1/p'
}

# succeeds (printing path and version) if $1 is a QEMU >= min_major
use_if_new() {
    local major
    major=$(qemu_major "$1")
    [ -n "$major" ] && [ "$major" -ge "$min_major" ] || return 1
    echo "get-qemu: $1 ($("$1" --version | head -n1))"
}

if [ -n "${QEMU:-}" ]; then
    use_if_new "$QEMU" && exit 0
    echo "get-qemu: QEMU=$QEMU is not a qemu-system-aarch64 >= $min_major; looking further" >&2
fi
if command -v qemu-system-aarch64 >/dev/null; then
    use_if_new "$(command -v qemu-system-aarch64)" && exit 0
fi
[ -x "$wrapper" ] && use_if_new "$wrapper" && exit 0

fail() { echo "get-qemu: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || fail "building $tree needs root (debootstrap, chroot); rerun as root or set QEMU="
if ! command -v debootstrap >/dev/null; then
    command -v apt-get >/dev/null || fail "no debootstrap and no apt-get to install it"
    echo "get-qemu: installing debootstrap"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }; then
        fail "could not install the Debian package debootstrap"
    fi
fi

# Build into a scratch folder and rename at the end, so an interrupted run leaves nothing half-made.
mkdir -p "$cache"
work=$tree.partial
log=$cache/get-qemu.log
rm -rf "$work"
: >"$log"
cleanup() {
    mountpoint -q "$work/proc" 2>/dev/null && umount "$work/proc"
    rm -rf "$work"
}
trap cleanup EXIT
echo "get-qemu: debootstrapping Debian trixie into $tree (log: $log)"
debootstrap --variant=minbase trixie "$work" "$mirror" >>"$log" 2>&1 ||
    fail "debootstrap from $mirror failed (see $log)"
echo "deb $mirror trixie-backports main" >"$work/etc/apt/sources.list.d/backports.list"
# apt inside the chroot wants /proc
mount -t proc proc "$work/proc"
echo "get-qemu: installing qemu-system-arm from trixie-backports"
{
    chroot "$work" apt-get update &&
        DEBIAN_FRONTEND=noninteractive chroot "$work" apt-get install -y --no-install-recommends \
            -t trixie-backports qemu-system-arm &&
        chroot "$work" apt-get clean
} >>"$log" 2>&1 || fail "installing qemu-system-arm in the trixie tree failed (see $log)"
umount "$work/proc"
rm -rf "$tree"
mv "$work" "$tree"
trap - EXIT

# The wrapper finds the tree relative to itself, so the cache folder may move.
cat >"$wrapper" <<'EOF'
#!/bin/sh
# qemu-system-aarch64 from the Debian trixie tree next to this file (written by lazyfp's get-qemu.sh)
tree=$(dirname "$(readlink -f "$0")")/qemu-trixie
exec "$tree/lib64/ld-linux-x86-64.so.2" \
    --library-path "$tree/lib/x86_64-linux-gnu:$tree/usr/lib/x86_64-linux-gnu" \
    "$tree/usr/bin/qemu-system-aarch64" -L "$tree/usr/share/qemu" "$@"
EOF
chmod +x "$wrapper"
use_if_new "$wrapper" || fail "$wrapper does not run as a QEMU >= $min_major (see $log)"
