#!/usr/bin/env bash
# Installs (or names) what lazyfp needs on a Debian machine: the pinned Rust toolchain with its
# aarch64 targets (rust-toolchain.toml; rustup fetches them) and the Debian packages below.
set -euo pipefail
pkgs=(qemu-system-arm qemu-user gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross cpio xz-utils ipxe-qemu curl)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "prereqs: installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "prereqs: missing Debian packages; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi
command -v rustup >/dev/null || { echo "prereqs: rustup not found; install it from rustup.rs" >&2; exit 1; }
# rust-toolchain.toml names the toolchain, targets and components; this makes rustup fetch them.
rustup show active-toolchain >/dev/null
for t in aarch64-unknown-none aarch64-unknown-none-softfloat aarch64-unknown-linux-gnu; do
    rustup target list --installed | grep -qx "$t" || rustup target add "$t"
done
# make fuzz / fuzz-smoke: cargo-fuzz from crates.io.
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
"$(dirname "$0")/get-qemu.sh" || echo "prereqs: no QEMU >= 11, so no imx8mp_evk runs (reason above); the rest is ready" >&2
# The Microkit SDK, when none is given: the official release into the cache (never fails here).
"$(dirname "$0")/fetch-sdk.sh"
