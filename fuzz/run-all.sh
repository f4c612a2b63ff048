#!/usr/bin/env bash
# A fuzzing campaign over every target (or the ones named), from prebuilt binaries, and a table
# of what each run did: executions, exec/s, coverage, peak RSS, findings.
#
#   fuzz/run-all.sh                       build, then every target for 900 s, two at a time
#   SECS=300 JOBS=1 fuzz/run-all.sh ops_model hint_decode
#   NO_BUILD=1 fuzz/run-all.sh            reuse the binaries already built
#
# Build flags: -O -a (optimized, with debug assertions, so overflows panic), no sanitizer and no
# comparison tracing (`-s none --no-trace-compares`): ferrocask's checks run safe Rust on a
# simulated file system, where AddressSanitizer finds nothing the checks would not and costs ten
# times the speed (ops_model: 38 exec/s with it, 1,154 without; see README.md). Findings go to
# artifacts/<target>/, logs to logs-work/, the working corpus to corpus-work/ (all ignored).
set -euo pipefail
cd "$(dirname "$0")"
SECS=${SECS:-900}
JOBS=${JOBS:-2}
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(record_decode segment_recover hint_decode ops_model server_dispatch)
fi
flags=(-O -a -s none --no-trace-compares)
if [[ -z "${NO_BUILD:-}" ]]; then
    RUSTC_BOOTSTRAP=1 cargo fuzz build "${flags[@]}"
fi
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs-work

run() {
    local t=$1 extra=()
    case $t in
        record_decode) extra=(-malloc_limit_mb=16) ;;
        segment_recover) extra=(-max_len=20000) ;;
        server_dispatch) extra=(-max_len=4096) ;;
    esac
    mkdir -p "corpus-work/$t" "artifacts/$t"
    nice -n 10 "$bin/$t" "corpus-work/$t" "corpus/$t" -max_total_time="$SECS" -print_final_stats=1 \
        -artifact_prefix="artifacts/$t/" "${extra[@]}" > "logs-work/$t.log" 2>&1 || true
}

running=0
for t in "${targets[@]}"; do
    run "$t" &
    running=$((running + 1))
    if ((running >= JOBS)); then
        wait -n
        running=$((running - 1))
    fi
done
wait

printf '%-16s %12s %8s %8s %8s %8s %s\n' target executions exec/s cov ft rss_mb findings
for t in "${targets[@]}"; do
    log=logs-work/$t.log
    stat() { grep -m1 "stat::$1:" "$log" | awk '{print $2}'; }
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$last")
    findings=$(find "artifacts/$t" -type f | wc -l)
    printf '%-16s %12s %8s %8s %8s %8s %s\n' "$t" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$cov" "$ft" "$(stat peak_rss_mb)" "$findings"
done
