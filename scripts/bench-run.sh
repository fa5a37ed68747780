#!/usr/bin/env bash
# Boots a benchmark loader.img in QEMU with instruction counting (-icount shift=0: the guest's
# virtual counter advances one ns per emulated instruction, so figures repeat run to run; with
# sleep=off time jumps to the next deadline while every CPU idles, so host load never shows up in
# guest time) and keeps the serial output. usage: bench-run.sh LOADER_IMG LOG [TIMEOUT_S] [EXPECT]
# EXPECT: a line that must appear (default: the bench guest's PASS or its last case).
set -uo pipefail
img=$1 log=$2 limit=${3:-600} expect=${4:-}
timeout --foreground -k 5 "$limit" "$(dirname "$0")/qemu.sh" "$img" -icount shift=0,sleep=off </dev/null >"$log" 2>&1
rc=$?
# The VMM prefixes guest lines with "guest: "; the floor handler prints them bare.
sed -i 's/\r$//; s/^guest: //' "$log"
if [ -n "$expect" ]; then
    grep -q "$expect" "$log" && [ $rc = 0 ] || { echo "bench run failed (qemu exit $rc, no '$expect'): $img"; tail -n 12 "$log"; exit 1; }
    echo "bench: $(basename "$log"): $(grep "$expect" "$log" | tail -n 1)"; exit 0
fi
if [ $rc != 0 ] || ! grep -q "lazyfp: guest exited: PASS\|^bench: kind=wfi fp=1 neon=1" "$log"; then
    echo "bench run failed (qemu exit $rc): $img"; tr -d '\r' <"$log" | tail -n 12; exit 1
fi
echo "bench: $(grep -c '^bench: ' "$log") cases from $(basename "$log")"
