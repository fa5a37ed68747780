#!/usr/bin/env bash
# The one QEMU command line per board lazyfp boots with. usage: qemu.sh LOADER_IMG [QEMU ARGS...]
#   qemu.sh --check   says whether the chosen QEMU can run the board; non-zero with the reason if not
# MICROKIT_BOARD picks the board (default qemu_virt_aarch64), QEMU the binary, QEMU_SMP the core
# count (4 for the SMP configs). No reboot: a guest reset or a kernel that resets the board ends
# the run.
# - qemu_virt_aarch64: QEMU virt, Cortex-A53, EL2 for seL4, 2 GiB, the image where Microkit's
#   loader expects it.
# - imx8mp_evk: QEMU >= 11 (10 delivers no virtual interrupts there; scripts/get-qemu.sh fetches
#   11), the loader wrapped by tools/imxboot as an arm64 Image (entered at EL2 with PSCI) next to
#   LOADER_IMG, 6 GiB as the SDK's memory map, the console on UART2 (the second -serial). SMP
#   needs -icount shift=0: without it the debug kernel's clock sync test fails.
set -euo pipefail
board=${MICROKIT_BOARD:-qemu_virt_aarch64}
smp=${QEMU_SMP:-1}
cached=${XDG_CACHE_HOME:-$HOME/.cache}/lazyfp/qemu-system-aarch64
case $board in
qemu_virt_aarch64) machine=virt ;;
imx8mp_evk) machine=imx8mp-evk min_major=11 ;;
*)
    echo "qemu.sh: $board: no QEMU command line for this board (only qemu_virt_aarch64, imx8mp_evk)" >&2
    exit 1
    ;;
esac
# SMP runs need QEMU >= 11 as well: Debian 12's 7.2 stalls in Microkit's loader under -icount.
if [ "$board" = qemu_virt_aarch64 ] && [ "$smp" -gt 1 ]; then min_major=11; fi
if { [ "$board" = qemu_virt_aarch64 ] && [ "$smp" -le 1 ]; } || [ ! -x "$cached" ]; then
    qemu=${QEMU:-qemu-system-aarch64}
else
    qemu=${QEMU:-$cached}
fi
# SMP runs one emulated core at a time, timed by instructions (-icount shift=0). QEMU's default
# (one host thread per core) on a host with fewer free cores than -smp stretches every hand-over
# of seL4's big kernel lock (a FIFO spin lock) to a host time slice: the four-core systems then
# crawl (docs/design.md, "SMP under QEMU").
icount=()
if [ "$smp" -gt 1 ] && [[ " $* " != *" -icount "* ]]; then icount=(-icount shift=0); fi

if [ "${1:-}" = --check ]; then
    version=$("$qemu" --version 2>/dev/null | sed -n '1s/^QEMU emulator version \([0-9.]*\).*/\1/p') || true
    [ -n "$version" ] || { echo "qemu.sh: $board: $qemu does not run" >&2; exit 1; }
    machines=$("$qemu" -machine help)
    if ! grep -q "^$machine " <<<"$machines"; then
        echo "qemu.sh: $board: $qemu (QEMU $version) has no -machine $machine" >&2
        exit 1
    fi
    if [ "${version%%.*}" -lt "${min_major:-0}" ]; then
        echo "qemu.sh: $board: $qemu is QEMU $version, needs >= $min_major (scripts/get-qemu.sh)" >&2
        exit 1
    fi
    echo "qemu.sh: $board: $qemu (QEMU $version)"
    exit 0
fi

img=${1:?usage: qemu.sh LOADER_IMG [QEMU ARGS...] | qemu.sh --check}
shift
if [ "$board" = qemu_virt_aarch64 ]; then
    exec "$qemu" -machine virt,virtualization=on -cpu cortex-a53 -m size=2G \
        -smp "$smp" "${icount[@]}" -nographic -serial mon:stdio -no-reboot \
        -device loader,file="$img",addr=0x70000000,cpu-num=0 "$@"
fi

# imx8mp_evk
root=$(cd "$(dirname "$0")/.." && pwd)
image=${img%.img}.Image dtb=${img%.img}.dtb
cargo run --quiet --manifest-path "$root/Cargo.toml" -p lazyfp-imxboot -- \
    --loader "$img" --image-out "$image" --dtb-out "$dtb" --ram-size 6G --cores "$smp"
exec "$qemu" -machine imx8mp-evk -m 6G -smp "$smp" "${icount[@]}" -nographic \
    -serial null -serial mon:stdio -no-reboot -kernel "$image" -dtb "$dtb" "$@"
