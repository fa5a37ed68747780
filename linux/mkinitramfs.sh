#!/usr/bin/env bash
# mkinitramfs.sh OUTDIR [TOOL...]: lazyfp's Linux initramfs, OUTDIR/initramfs.cpio (newc,
# uncompressed: gunzip of the 4 MB archive took a tenth of the guest's boot), built without root: Debian's busybox-static (arm64), linux/init as /init, and each TOOL
# (static aarch64 binaries: lazyfp's in-guest tools) in /bin. Without TOOLs it takes
# OUTDIR/../tools/{fpstress,exitbench}. The kernel modules in OUTDIR/../debian/modules (the
# virtio console's, from get-kernel.sh), when there, go to /lib/modules for /init. Owners are root, timestamps fixed, so the same inputs
# give the same archive; the archive is replaced only when its content changes.
set -euo pipefail
PROG=mkinitramfs
here=$(cd "$(dirname "$0")" && pwd)
. "$here/apt-arm64.sh"

[ $# -ge 1 ] || { echo "usage: $0 OUTDIR [TOOL...]" >&2; exit 2; }
out=$1
shift
mkdir -p "$out"
tools=("$@")
if [ ${#tools[@]} = 0 ]; then
    tools=("$out/../tools/fpstress" "$out/../tools/exitbench")
fi
for t in "${tools[@]}"; do
    [ -f "$t" ] || die "$t: no such file (build the tools first: make linux-tools)"
done

if ! command -v cpio >/dev/null; then
    [ "$(id -u)" = 0 ] || die "cpio not found; run: sudo apt-get install -y cpio"
    echo "$PROG: installing cpio"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cpio >/dev/null 2>&1 ||
        { apt_update_once && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cpio >/dev/null 2>&1; } ||
        die "apt-get install cpio failed"
fi

apt_arm64_ready
pkg=busybox-static:arm64
version=$(apt_candidate "$pkg")
deb=$(fetch_deb "$pkg" "$version" "$out")
echo "$PROG: busybox-static $version"

root="$out/root"
rm -rf "$root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root}
dpkg-deb --fsys-tarfile "$deb" | tar -x -O ./bin/busybox >"$root/bin/busybox" ||
    die "$deb has no bin/busybox"
chmod 755 "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 755 "$here/init" "$root/init"
for t in "${tools[@]}"; do
    install -m 755 "$t" "$root/bin/$(basename "$t")"
done
mkdir -p "$root/lib/modules"
for m in "$out"/../debian/modules/*.ko; do
    [ -f "$m" ] && install -m 644 "$m" "$root/lib/modules/"
done
chmod 1777 "$root/tmp"

# Fixed timestamps and numbering: the archive depends on the content only.
find "$root" -exec touch -h -d @0 {} +
tmp="$out/initramfs.cpio.tmp"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
    cpio -o -H newc --owner=0:0 --reproducible --quiet) >"$tmp"
if cmp -s "$tmp" "$out/initramfs.cpio"; then
    rm "$tmp"
    echo "$PROG: $out/initramfs.cpio unchanged ($(stat -c %s "$out/initramfs.cpio") bytes)"
else
    mv "$tmp" "$out/initramfs.cpio"
    echo "$PROG: wrote $out/initramfs.cpio ($(stat -c %s "$out/initramfs.cpio") bytes)"
fi
