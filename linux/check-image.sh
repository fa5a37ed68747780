#!/usr/bin/env bash
# check-image.sh FILE: checks that FILE is an arm64 Linux Image (Documentation/arch/arm64/
# booting.rst: magic "ARM\x64" at offset 0x38) and prints its header's text_offset, image_size
# and flags. On failure prints one line naming the file and exits 1.
set -euo pipefail
[ $# = 1 ] || { echo "usage: $0 FILE" >&2; exit 2; }
f=$1
fail() { echo "check-image: $f: $*" >&2; exit 1; }
[ -e "$f" ] || fail "no such file"
[ -f "$f" ] && [ -r "$f" ] || fail "not a readable file"
[ "$(stat -L -c %s "$f")" -ge 64 ] || fail "too short for an arm64 Image header (64 bytes)"
# le64 OFFSET: the little-endian 64-bit field at OFFSET.
le64() {
    od -An -v -tu1 -j "$1" -N 8 "$f" | awk '{ for (i = NF; i >= 1; i--) v = v * 256 + $i } END { printf "0x%x", v }'
}
magic=$(od -An -v -tx1 -j 56 -N 4 "$f" | tr -d ' \n')
if [ "$magic" != 41524d64 ]; then
    case $(od -An -tx1 -N2 "$f" | tr -d ' ') in
        1f8b) fail "gzip-compressed (a vmlinuz?): decompress it to a raw Image first (gzip -dc)" ;;
        7f45) fail "an ELF file (vmlinux?), not an arm64 Image: use arch/arm64/boot/Image" ;;
        *) fail "not an arm64 Image (no \"ARM\\x64\" magic at offset 0x38)" ;;
    esac
fi
echo "check-image: $f: arm64 Image, magic ARM\\x64, text_offset=$(le64 8) image_size=$(le64 16) flags=$(le64 24)"
