#!/usr/bin/env bash
# soak-rates.sh SOAK_LOG: one line per soak run from run-boots.sh's output: its verdict, the
# closing exit count and the exits per wall second of the boot (from its "boot time" line).
set -euo pipefail
log=${1:?usage: soak-rates.sh SOAK_LOG}
[ -f "$log" ] || { echo "soak-rates: $log: no such file" >&2; exit 2; }
awk '
    /^system test (passed|FAILED) \(/ || /^linux shell test/ { v = $0 }
    /^lazyfp: exits: total=/ { split($3, a, "="); exits = a[2] }
    /^boot time \(/ {
        label = $0; sub(/^boot time \(/, "", label); sub(/\): .*/, "", label)
        secs = $NF == "s" ? $(NF-1) : $NF
        rate = secs > 0 ? int(exits / secs) : 0
        if (exits) printf "soak: %s: exits=%s wall_s=%s exits_per_s=%d\n", label, exits, secs, rate
        exits = 0
    }
' "$log"
