#!/usr/bin/env bash
# Builds every fuzz target and runs each for SECONDS (default 600), one after the other,
# in one process on one thread at the lowest priority, on the corpus in corpus/TARGET
# (the committed seeds plus whatever earlier runs added). Prints one table row per target
# from libFuzzer's last status line: executions, coverage (cov: edges, ft: features) and
# corpus size; a target that finds a crash stops and is marked, its input in artifacts/.
#
#   fuzz/run.sh [SECONDS]          every target
#   TARGETS="jws sd_jwt" fuzz/run.sh 60
set -uo pipefail

seconds=${1:-600}
cd "$(dirname "$0")"
logs=target/logs
mkdir -p "$logs"

nice -n 19 cargo +nightly fuzz build || exit 1
targets=${TARGETS:-$(cargo +nightly fuzz list)}

failed=0
rows=()
for target in $targets; do
    log="$logs/$target.log"
    mkdir -p "corpus/$target"
    started=$(date +%s)
    nice -n 19 cargo +nightly fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1
    status=$?
    took=$(($(date +%s) - started))
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
    corpus=$(sed -nE 's/.* corp: ([0-9]+\/[0-9]+[a-zA-Z]*).*/\1/p' <<<"$last")
    verdict=ok
    if [ "$status" -ne 0 ]; then
        verdict="FAILED (exit $status, see $log)"
        failed=1
    fi
    rows+=("$(printf '| %-22s | %6ss | %12s | %6s | %7s | %12s | %s |' \
        "$target" "$took" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corpus:-?}" "$verdict")")
    echo "${rows[-1]}"
done

echo
printf '| %-22s | %7s | %12s | %6s | %7s | %12s | %s |\n' \
    target time executions cov ft "corpus" result
printf '|%s|\n' "------------------------|---------|--------------|--------|---------|--------------|--------"
printf '%s\n' "${rows[@]}"
exit "$failed"
