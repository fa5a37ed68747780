#!/usr/bin/env bash
# get-kernel.sh OUTDIR: Debian bookworm's arm64 kernel as a raw arm64 Image, in OUTDIR/Image.
#
# Downloads (never installs) linux-image-<abi>-arm64:arm64, the package the metapackage
# linux-image-arm64:arm64 depends on, extracts boot/vmlinuz-* and decompresses it: Debian's
# arm64 vmlinuz is a gzip-compressed Image. OUTDIR/Image.pkg names the package and version.
# Also OUTDIR/modules/: the modules of the guest's batched console (virtio_mmio, virtio_console;
# Debian builds them as modules), which mkinitramfs.sh puts in the initramfs.
# Idempotent: an OUTDIR that already holds the Image of that package is left as it is, and a
# downloaded .deb is reused.
set -euo pipefail
PROG=get-kernel
here=$(cd "$(dirname "$0")" && pwd)
. "$here/apt-arm64.sh"

[ $# = 1 ] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
out=$1
mkdir -p "$out"

apt_arm64_ready
meta=linux-image-arm64:arm64
apt_candidate "$meta" >/dev/null
pkg=$(apt-cache depends "$meta" 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9].*-arm64(:arm64)?$/ {print $2; exit}')
[ -n "$pkg" ] || die "cannot tell which kernel $meta depends on (apt-cache depends $meta)"
pkg=${pkg%:arm64}:arm64
version=$(apt_candidate "$pkg")
info="${pkg%:arm64} $version"

modules=(kernel/drivers/virtio/virtio_mmio.ko kernel/drivers/char/virtio_console.ko)
have_modules() {
    local m
    for m in "${modules[@]}"; do [ -s "$out/modules/$(basename "$m")" ] || return 1; done
}
if [ -s "$out/Image" ] && [ "$(cat "$out/Image.pkg" 2>/dev/null)" = "$info" ] && have_modules; then
    echo "$PROG: $info (already in $out/Image)"
    exit 0
fi

deb=$(fetch_deb "$pkg" "$version" "$out")
tmp=$(mktemp -d "$out/extract.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' \
    "${modules[@]/#/./lib/modules/*/}" ||
    die "$deb has no boot/vmlinuz-* or lacks one of ${modules[*]}"
vmlinuz=$(ls "$tmp"/boot/vmlinuz-* | head -n 1)
case $(od -An -tx1 -N2 "$vmlinuz" | tr -d ' ') in
    1f8b) gzip -dc "$vmlinuz" >"$tmp/Image" || die "$vmlinuz: gzip stream is corrupt" ;;
    *) cp "$vmlinuz" "$tmp/Image" ;;
esac
"$here/check-image.sh" "$tmp/Image" >/dev/null || die "$vmlinuz of $info does not hold an arm64 Image"
mkdir -p "$out/modules"
for m in "${modules[@]}"; do
    cp "$tmp"/lib/modules/*/"$m" "$out/modules/"
done
mv "$tmp/Image" "$out/Image"
echo "$info" >"$out/Image.pkg"
echo "$PROG: fetched $info -> $out/Image ($(stat -c %s "$out/Image") bytes)"
