#!/usr/bin/env bash
# Self-test of the verdict checks in judge-lib.sh that read the hostile client's lines and the
# save-back counts: a passing run's closing lines pass, and each way of breaking them fails with
# its message. usage: test-judge.sh (make test-scripts)
set -uo pipefail
. "$(dirname "$0")/judge-lib.sh"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
log=$dir/serial.log
good() {
    cat <<'LOG'
lazyfp: hostile-client step 1/2: fp-label-0 ok
guest: lazyfp: hostile-client PASS steps=99
lazyfp: hostile-client step 2/2: saveback-vcpu0 ok (sent 2 times: NEON sections meanwhile)
lazyfp: hostile-client PASS steps=2
lazyfp: vcpu0 (core 0): exits=10 fp_traps=3 savebacks=3 interfere=4
lazyfp: vcpu1 (core 1): exits=10 fp_traps=2 savebacks=2 interfere=4
lazyfp: fp-service core0: grants=5 savebacks=3 open=0 leaks=0 errors=0
lazyfp: fp-service core1: grants=5 savebacks=2 open=0 leaks=0 errors=0
LOG
}
failures=0
# expect WANT (empty: pass) SED-EDIT: the checks on the good log edited by SED-EDIT.
expect() {
    local want=$1 edit=$2 got
    good | sed "$edit" >"$log.txt"
    got=$( (
        fail() { echo "FAILED: $*"; exit 1; }
        VCPUS=2 check_per_vcpu lazy && check_hostile_client && echo passed
    ) )
    if [ -z "$want" ] && [ "$got" = passed ]; then return; fi
    if [ -n "$want" ] && [[ "$got" == "FAILED: $want"* ]]; then return; fi
    echo "test-judge: after '$edit': got '$got', want '${want:-passed}'"
    failures=$((failures + 1))
}
expect "" ""
expect "no hostile-client verdict" "/^lazyfp: hostile-client PASS/d"
expect "lazyfp: hostile-client step 1/2: fp-label-0 FAIL: message 1" \
    "s/fp-label-0 ok/fp-label-0 FAIL: message 1: got label 0 length 0 mr0 0x0, want label 1 length 1 mr0 0x0/; s/^lazyfp: hostile-client PASS steps=2/lazyfp: hostile-client FAIL steps=2 failed=1/"
expect "lazyfp: hostile-client FAIL steps=2" "s/^lazyfp: hostile-client PASS steps=2/lazyfp: hostile-client FAIL steps=2 failed=1/"
expect "core 1: the VMM made 3 save-backs, fp-service asked for 2" "s/fp_traps=2 savebacks=2/fp_traps=2 savebacks=3/"
expect "core 0: the VMM made 3 save-backs, fp-service asked for 4" "s/grants=5 savebacks=3/grants=5 savebacks=4/"
if [ "$failures" = 0 ]; then echo "test-judge: hostile-client and save-back checks pass and fail as they should"; fi
[ "$failures" = 0 ]
