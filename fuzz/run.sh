#!/usr/bin/env bash
# Builds the fuzz targets and runs each for SECONDS, one at a time; prints one line per target
# with libFuzzer's executions and fails when a target crashed (the input is kept as an artifact).
#   fuzz/run.sh SECONDS OUT_DIR [TARGET...]     (from the repo root; `make fuzz`, `make fuzz-smoke`)
# With FUZZ_RUNS=N each target stops after N executions instead (SECONDS still bounds it).
# New corpus entries go to OUT_DIR/corpus/TARGET, never into the seeds (fuzz/seeds/TARGET).
set -euo pipefail
seconds=$1 out=$2
shift 2
cd "$(dirname "$0")/.."
targets=("$@")
((${#targets[@]})) || targets=($(ls fuzz/fuzz_targets | sed -n 's/\.rs$//p'))
command -v cargo-fuzz >/dev/null || { echo "fuzz: cargo-fuzz not found; run make prereqs" >&2; exit 1; }
mkdir -p "$out"
out=$(cd "$out" && pwd)
# cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP lets the pinned stable toolchain take
# them. No sanitizer: the fuzzed crates have no unsafe code, and ASan would halve the rate.
# Overflow checks are on (-a), so arithmetic overflow on any input is a crash.
build=()
((${#targets[@]} == 1)) && build=("${targets[0]}")
RUSTC_BOOTSTRAP=1 cargo fuzz build --fuzz-dir fuzz --target-dir "$out/target" -s "${FUZZ_SANITIZER:-none}" -a \
    "${build[@]}" >"$out/build.log" 2>&1 \
    || { cat "$out/build.log" >&2; echo "fuzz: build failed" >&2; exit 1; }
bin=$out/target/x86_64-unknown-linux-gnu/release
failed=0
for t in "${targets[@]}"; do
    mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
    corpora=("$out/corpus/$t")
    [ -d "fuzz/seeds/$t" ] && corpora+=("fuzz/seeds/$t")
    extra=()
    [ -n "${FUZZ_RUNS:-}" ] && extra+=("-runs=$FUZZ_RUNS")
    [ -f "fuzz/$t.dict" ] && extra+=("-dict=fuzz/$t.dict")
    # The real system description is the best seed for the parser; it is read, not copied in.
    [ "$t" = sdf ] && cp system.xml "$out/corpus/$t/system.xml"
    log=$out/$t.log
    rc=0
    "$bin/$t" "${corpora[@]}" "${extra[@]}" \
        -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$out/artifacts/$t/" >"$log" 2>&1 || rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$runs" ] || runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -1)
    corpus=$(ls "$out/corpus/$t" | wc -l)
    if [ "$rc" = 0 ]; then
        secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
        printf 'fuzz: %-7s %10s executions in %ss, corpus %s, no crash\n' "$t" "${runs:-?}" "${secs:-$seconds}" "$corpus"
    else
        failed=1
        artifact=$(ls -t "$out/artifacts/$t" 2>/dev/null | head -1)
        printf 'fuzz: %-7s %10s executions, CRASH (exit %s): %s\n' "$t" "${runs:-?}" "$rc" "$out/artifacts/$t/$artifact"
        grep -m3 -E "panicked|ERROR: libFuzzer|SUMMARY" "$log" | sed 's/^/    /'
        echo "    replay: $bin/$t $out/artifacts/$t/$artifact; log $log"
    fi
done
exit $failed
