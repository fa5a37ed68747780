#!/usr/bin/env bash
# Runs system-test boots side by side (independent QEMU runs, one host core each) and fails if
# any failed. Each line of the file LIST is one boot, fields separated by '|':
#   LABEL|VCPUS|QEMU_SMP|SCRIPT|ARGS...   (ARGS as the script takes them, space separated)
# LABEL is "BOARD CONFIG POLICY GUEST": its first word is the board QEMU boots (MICROKIT_BOARD).
# usage: run-boots.sh LIST [JOBS]   (JOBS: boots at a time, default 2)
set -uo pipefail
list=$1 jobs=${2:-2}
dir=$(dirname "$0")
out=$(mktemp -d)
n=0
pids=()
run_one() {
    local i=$1 line=$2
    IFS='|' read -r label vcpus smp script args <<<"$line"
    local start=$SECONDS
    # shellcheck disable=SC2086 # ARGS are words on purpose
    LABEL="$label" MICROKIT_BOARD="${label%% *}" VCPUS="$vcpus" QEMU_SMP="$smp" \
        "$dir/$script" $args >"$out/$i.log" 2>&1
    echo $? >"$out/$i.rc"
    echo "boot time ($label): $((SECONDS - start)) s" >>"$out/$i.log"
}
while IFS= read -r line; do
    [ -n "$line" ] || continue
    n=$((n + 1))
    run_one "$n" "$line" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
done <"$list"
wait
failed=0
for i in $(seq 1 "$n"); do
    cat "$out/$i.log"
    [ "$(cat "$out/$i.rc" 2>/dev/null)" = 0 ] || failed=$((failed + 1))
done
for i in $(seq 1 "$n"); do grep -h "^system test \(passed\|FAILED\)\|^linux shell test\|^boot time" "$out/$i.log"; done
rm -rf "$out"
echo "boots: $((n - failed)) passed, $failed failed"
[ "$failed" = 0 ]
