#!/usr/bin/env bash
# Boots a lazyfp loader.img in QEMU under a timeout and judges the run from its serial output.
# usage: system-test.sh LOADER_IMG LOG POLICY [TIMEOUT_S] [MIN_EXITS]
# Passes when the VMM prints `lazyfp: guest exited: PASS` and an fp-torture PASS line with at
# least MIN_EXITS exits (and, under the lazy policy, fp_traps > 0 and savebacks > 0), QEMU
# exits by itself (the guest's PSCI SYSTEM_OFF), and nothing panicked or failed. With VCPUS=N the
# torture must cover N vCPUs, each with its own counters line (lazy: each trapped and was saved
# back) and no leak on any core. The hostile IPC client must print its PASS line, and every
# save-back the VMM made must be one fp-service asked for. LABEL names the run in the verdict line.
set -uo pipefail
. "$(dirname "$0")/judge-lib.sh"
label=${LABEL:-$3 test}
img=$1 log=$2 policy=$3 limit=${4:-300} min_exits=${5:-100000}
: >"$log"
timeout --foreground -k 5 "$limit" "$(dirname "$0")/qemu.sh" "$img" </dev/null >"$log" 2>&1 &
qpid=$!
wait $qpid
rc=$?
tr -d '\r' <"$log" >"$log.txt"
show() { echo "--- last serial lines ($log) ---"; tail -n 14 "$log.txt"; echo "---"; }
fail() { show; echo "system test FAILED ($label): $*"; exit 1; }
check_vm_stopped
[ $rc = 124 ] && fail "timeout after ${limit}s"
grep -q "panic" "$log.txt" && fail "a PD panicked"
grep -q "lazyfp: guest exited: PASS" "$log.txt" || fail "no 'guest exited: PASS' (qemu exit $rc)"
[ $rc = 0 ] || fail "qemu exited with $rc"
line=$(grep "lazyfp: fp-torture" "$log.txt" | tail -n 1)
[ -n "$line" ] || fail "no fp-torture line"
case "$line" in *"fp-torture PASS"*) ;; *) fail "torture: $line" ;; esac
val() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$line"; }
exits=$(val exits) traps=$(val fp_traps) saves=$(val savebacks) leaks=$(val leaks) mism=$(val mismatches)
[ "${exits:-0}" -ge "$min_exits" ] || fail "only ${exits:-0} exits (want >= $min_exits)"
[ "${leaks:-1}" = 0 ] && [ "${mism:-1}" = 0 ] || fail "leaks=$leaks mismatches=$mism"
if [ "$policy" = lazy ]; then
    [ "${traps:-0}" -gt 0 ] && [ "${saves:-0}" -gt 0 ] || fail "lazy run without FP traps or save-backs (fp_traps=$traps savebacks=$saves)"
fi
vcpus=$(val vcpus)
[ "${vcpus:-0}" -ge "${VCPUS:-1}" ] || fail "the torture covered ${vcpus:-0} vCPU(s), want ${VCPUS:-1}"
check_per_vcpu "$policy"
check_hostile_client
show
show_closing
echo "system test passed ($label): $line"
