#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ one after another, each for a given
# time, then prints each target's executions and whether it crashed.
#
#   scripts/fuzz.sh [seconds] [target...]     (default: 600 s, every target)
#
# Exits non-zero if any target crashed; the input is in
# fuzz/artifacts/<target>/ and the fuzzer's output in fuzz/target/logs/.
# See docs/fuzzing.md. Environment:
#   FUZZ_SANITIZER  none (default) or address
#   FUZZ_NICE       niceness of the build and the fuzzers (default 19)
#   CARGO_BUILD_JOBS  build jobs (default 1)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
shift || true
all=(config batch query jsonrpc sql)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# cargo-fuzz passes nightly-only flags to rustc; the pinned stable toolchain
# accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1}
sanitizer=${FUZZ_SANITIZER:-none}
nice=(nice -n "${FUZZ_NICE:-19}")
logs=fuzz/target/logs
mkdir -p "$logs"

command -v cargo-fuzz >/dev/null || {
    echo "cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}

# One build for every target, so the runs start at once.
"${nice[@]}" cargo fuzz build --sanitizer "$sanitizer"

declare -A execs result
failed=0
for t in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$t"
    # New inputs go to the first directory; the seeds and past crashes
    # (fuzz/regressions) are read only.
    dirs=("fuzz/corpus/$t")
    for d in "fuzz/seeds/$t" "fuzz/regressions/$t"; do
        [ -d "$d" ] && dirs+=("$d")
    done
    args=(-max_total_time="$seconds" -timeout=10 -print_final_stats=1)
    [ -f "fuzz/dicts/$t.dict" ] && args+=(-dict="fuzz/dicts/$t.dict")
    log="$logs/$t.log"
    echo "== $t: ${seconds}s, log in $log"
    status=0
    "${nice[@]}" cargo fuzz run --sanitizer "$sanitizer" "$t" "${dirs[@]}" -- "${args[@]}" \
        >"$log" 2>&1 || status=$?
    n=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
    [ -n "$n" ] || n=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#' || true)
    execs[$t]=${n:-?}
    if [ "$status" -eq 0 ]; then
        result[$t]="no crash"
    else
        failed=1
        artifact=$(grep -o 'fuzz/artifacts/[^ ]*' "$log" | tail -1 || true)
        result[$t]="CRASH (exit $status) ${artifact:-see $log}"
        grep -m1 -A3 "panicked at" "$log" || tail -20 "$log"
    fi
    echo "   $t: ${execs[$t]} executions, ${result[$t]}"
done

echo
printf '%-10s %14s  %s\n' target executions result
for t in "${targets[@]}"; do
    printf '%-10s %14s  %s\n' "$t" "${execs[$t]}" "${result[$t]}"
done
exit "$failed"
