# Shared checks of a run's closing lines, sourced by the system-test scripts.
# Needs: $log.txt (the serial log without CRs), fail() and LABEL ("board config policy guest").
# VCPUS: how many vCPUs the run must report (default 1).

# Every vCPU line: `lazyfp: vcpuV (core C): ... fp_traps=T savebacks=S ...`; under the lazy
# policy each vCPU must have trapped and been saved back, and every core's fp-service line must
# show no leak and no open section.
check_per_vcpu() {
    local policy=$1 want=${VCPUS:-1} lines n=0 line
    lines=$(grep -E "^lazyfp: vcpu[0-9]+ \(core [0-9]+\):" "$log.txt")
    while IFS= read -r line; do
        [ -n "$line" ] || continue
        n=$((n + 1))
        local t s
        t=$(sed -n 's/.* fp_traps=\([0-9]*\).*/\1/p' <<<"$line")
        s=$(sed -n 's/.* savebacks=\([0-9]*\).*/\1/p' <<<"$line")
        if [ "$policy" = lazy ] && [ "${PER_VCPU_FP:-1}" = 1 ]; then
            [ "${t:-0}" -gt 0 ] && [ "${s:-0}" -gt 0 ] || fail "lazy run: a vCPU without FP traps or save-backs: $line"
        fi
    done <<<"$lines"
    [ "$n" -ge "$want" ] || fail "$n vCPU line(s), want $want"
    local cores
    cores=$(grep -E "^lazyfp: fp-service core[0-9]+:" "$log.txt")
    [ "$(grep -c . <<<"$cores")" -ge "$want" ] || fail "fewer fp-service core lines than vCPUs"
    while IFS= read -r line; do
        local leaks core asked served
        leaks=$(sed -n 's/.* leaks=\([0-9]*\).*/\1/p' <<<"$line")
        [ "${leaks:-1}" = 0 ] || fail "NEON worker saw leaks: $line"
        # Every save-back the VMM made on a core was one fp-service asked for there: nobody
        # else (the hostile client) got one served.
        core=$(sed -n 's/^lazyfp: fp-service core\([0-9]*\):.*/\1/p' <<<"$line")
        asked=$(sed -n 's/.* savebacks=\([0-9]*\).*/\1/p' <<<"$line")
        served=$(grep -E "^lazyfp: vcpu[0-9]+ \(core $core\):" "$log.txt" |
            sed -n 's/.* savebacks=\([0-9]*\).*/\1/p' | awk '{ n += $1 } END { print n + 0 }')
        [ "$served" = "${asked:-x}" ] || fail "core $core: the VMM made $served save-backs, fp-service asked for ${asked:-?}"
    done <<<"$cores"
}

# The hostile IPC client (docs/hostile.md) must have finished every step with the replies and
# counters it wants: its PASS line, printed by the VMM with the prefix only the VMM adds.
check_hostile_client() {
    local verdict
    verdict=$(grep -E "^lazyfp: hostile-client (PASS|FAIL) steps=" "$log.txt" | tail -n 1)
    [ -n "$verdict" ] || fail "no hostile-client verdict (the hostile IPC client did not finish)"
    case "$verdict" in
    "lazyfp: hostile-client PASS steps="*) ;;
    *) fail "$(grep -m1 -E "^lazyfp: hostile-client step .* FAIL" "$log.txt" || echo "$verdict")" ;;
    esac
}

show_closing() {
    grep -E "^lazyfp: (vcpu[0-9]+ |fp-service core|exits:|fp hooks:|hostile-client (PASS|FAIL))" "$log.txt"
}

# A VM the VMM had to stop: it printed why and powered the system off (on_vm_stop); say so
# rather than "no PASS".
check_vm_stopped() {
    local line
    line=$(grep -m1 "^lazyfp: guest exited: FAIL vmm stopped the guest" "$log.txt") || return 0
    fail "the VMM stopped the VM: ${line#lazyfp: guest exited: FAIL vmm stopped the guest: }"
}
