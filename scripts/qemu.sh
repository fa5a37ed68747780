#!/usr/bin/env bash
# The one QEMU command line lazyfp boots with (QEMU virt, Cortex-A53, EL2 for seL4, 2 GiB, the
# image where Microkit's loader expects it). usage: qemu.sh LOADER_IMG [QEMU ARGS...]
# QEMU_SMP sets the core count (4 for the SMP configs). No reboot: a guest reset or a kernel
# that resets the board ends the run.
img=$1; shift
exec qemu-system-aarch64 -machine virt,virtualization=on -cpu cortex-a53 -m size=2G \
    -smp "${QEMU_SMP:-1}" -nographic -serial mon:stdio -no-reboot \
    -device loader,file="$img",addr=0x70000000,cpu-num=0 "$@"
