#!/usr/bin/env bash
# Boots a lazyfp loader.img with the Linux guest running fpstress, under a timeout, and judges
# the run from its serial output. usage: linux-test.sh LOADER_IMG LOG POLICY [TIMEOUT_S]
# Passes when fpstress prints its PASS line, the guest powers off by itself (QEMU exits 0), the
# neon worker ran beside it with no leak, and the kernel neither panicked nor oopsed. With VCPUS=N
# the kernel must bring up N CPUs and every core's NEON worker must have run beside it. LABEL
# names the run in the verdict line.
set -uo pipefail
. "$(dirname "$0")/judge-lib.sh"
label=${LABEL:-$3 linux}
img=$1 log=$2 policy=$3 limit=${4:-600}
timeout --foreground -k 5 "$limit" "$(dirname "$0")/qemu.sh" "$img" </dev/null >"$log" 2>&1
rc=$?
tr -d '\r' <"$log" >"$log.txt"
show() { echo "--- last serial lines ($log) ---"; grep -v '^x[0-9]\|^tpidr' "$log.txt" | tail -n 16; echo "---"; }
fail() { show; echo "system test FAILED ($label): $*"; exit 1; }
check_vm_stopped
[ $rc = 124 ] && fail "timeout after ${limit}s"
grep -qE "Kernel panic|Oops|BUG:|Internal error" "$log.txt" && fail "kernel panic or oops"
grep -q "panic" "$log.txt" && fail "a PD panicked"
grep -q "lazyfp: guest exited: FAIL" "$log.txt" && fail "the VMM stopped the guest"
line=$(grep -o "lazyfp: linux fpstress [A-Z]* .*" "$log.txt" | tail -n 1)
[ -n "$line" ] || fail "no fpstress result"
case "$line" in *"fpstress PASS"*) ;; *) fail "$line" ;; esac
[ $rc = 0 ] || fail "qemu exited with $rc (no power-off?)"
svc=$(grep "lazyfp: fp-service core0:" "$log.txt" | tail -n 1)
grants=$(sed -n 's/.* grants=\([0-9]*\).*/\1/p' <<<"$svc")
leaks=$(sed -n 's/.* leaks=\([0-9]*\).*/\1/p' <<<"$svc")
[ "${grants:-0}" -gt 1 ] || fail "the NEON worker did not run beside the guest ($svc)"
[ "${leaks:-1}" = 0 ] || fail "NEON worker saw leaks ($svc)"
if [ "${VCPUS:-1}" -gt 1 ]; then
    grep -q "smp: Brought up 1 node, ${VCPUS} CPUs" "$log.txt" || fail "the kernel did not bring up ${VCPUS} CPUs"
    while IFS= read -r c; do
        g=$(sed -n 's/.* grants=\([0-9]*\).*/\1/p' <<<"$c")
        [ "${g:-0}" -gt 1 ] || fail "a core's NEON worker did not run beside the guest ($c)"
    done < <(grep -E "^lazyfp: fp-service core[0-9]+:" "$log.txt")
fi
check_per_vcpu "$policy"
show
show_closing
grep -h "smp: Brought up" "$log.txt"
echo "system test passed ($label): $line; $svc"
