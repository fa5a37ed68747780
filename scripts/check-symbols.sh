#!/usr/bin/env bash
# Fails unless a PD ELF has every symbol the Microkit tool patches, with its C size, in .data,
# and the entry symbol _start.
set -euo pipefail
elf=$1; shift
readelf=${READELF:-aarch64-linux-gnu-readelf}
syms=$("$readelf" -sW "$elf")
status=0
check() { # name size
    local line
    line=$(awk -v n="$1" '$8 == n' <<<"$syms")
    if [ -z "$line" ]; then echo "$(basename "$elf"): missing symbol $1"; status=1; return; fi
    local size; size=$(awk '{print $3}' <<<"$line")
    if [ "$size" != "$2" ]; then echo "$(basename "$elf"): $1 has size $size, expected $2"; status=1; fi
}
check microkit_name 64
check microkit_passive 1
for s in microkit_irqs microkit_notifications microkit_pps microkit_ioports; do check "$s" 8; done
for extra in "$@"; do check "$extra" 8; done
entry=$("$readelf" -hW "$elf" | awk '/Entry point/ {print $4}')
start=$(awk '$8 == "_start" {print "0x" $2}' <<<"$syms" | sed 's/^0x0*/0x/')
[ "$((entry))" = "$((start))" ] || { echo "$(basename "$elf"): entry $entry is not _start ($start)"; status=1; }
[ $status = 0 ] && echo "$(basename "$elf"): patched symbols present"
exit $status
