#!/usr/bin/env bash
# redis-benchmark against `ferrocask serve` and against redis-server with appendonly yes,
# appendfsync always, both on the same disk (a directory under $BENCH_DIR, default /tmp),
# interleaved: each test runs on ferrocask then on Redis before the next, so a slow-fsync spell
# hits both. Prints one table: ops/s, p50, p99 (ms), and the ferrocask/Redis ratio; then RSS per
# million keys. Not a test; see BENCHMARKS.md.
#
#   server/bench/redis_compare.sh            # build release, run, print the table
#   ROUNDS=2 N_SCALE=2 server/bench/redis_compare.sh
#   PERF=1 TESTS="set 50 1 20000" server/bench/redis_compare.sh   # plus CPU per request
#
# PERF=1 attaches `perf stat -e task-clock,context-switches,cpu-migrations` to each server for
# each test and adds, per request: the server's CPU time (us), its context switches and CPU
# migrations. (This VM has no PMU: `instructions` is "not supported", so CPU time stands in.)
# TESTS overrides the list of "test clients pipeline n" specs (one per line or `;`-separated).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-1}
N_SCALE=${N_SCALE:-1}
BENCH_DIR=${BENCH_DIR:-/tmp}
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
  echo "needs redis-server and redis-benchmark: apt-get install -y redis-server redis-tools" >&2; exit 1; }
# FC_BIN: a ferrocask binary to run instead of this tree's release build (a before/after pair).
if [ -z "${FC_BIN:-}" ]; then
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release -q -p ferrocask-cli
  FC_BIN=${CARGO_TARGET_DIR:-target}/release/ferrocask
fi
work=$(mktemp -d "$BENCH_DIR/ferrocask-bench.XXXXXX")
fc_port=$((20000 + RANDOM % 10000)); rd_port=$((fc_port + 1))
cleanup() { kill "$fc_pid" "$rd_pid" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# Starts both servers on fresh directories under $work/$1.
start_servers() {
  mkdir -p "$work/$1/redis"
  "$FC_BIN" --dir "$work/$1/fc" serve --port "$fc_port" > "$work/$1/fc.log" 2>&1 &
  fc_pid=$!
  redis-server --port "$rd_port" --bind 127.0.0.1 --dir "$work/$1/redis" --save '' \
    --appendonly yes --appendfsync always --daemonize no > "$work/$1/redis.log" &
  rd_pid=$!
  for port in "$fc_port" "$rd_port"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
}
start_servers bench

# One redis-benchmark run against the server `pid` listens on; prints "rps p50 p99", and with
# PERF=1 also "cpu_us cs migrations" per request, counted by perf stat over the whole process.
bench() { # pid port test clients pipeline n extra...
  local pid=$1 port=$2 test=$3 clients=$4 pipeline=$5 n=$6; shift 6
  local perf_pid= out="$work/perf.$pid.csv"
  if [ "${PERF:-0}" = 1 ]; then
    perf stat -x, -e task-clock,context-switches,cpu-migrations -p "$pid" -o "$out" 2>/dev/null &
    perf_pid=$!
    sleep 0.2   # perf attaches asynchronously; nothing to wait on but its start
  fi
  local line
  line=$(redis-benchmark -p "$port" -t "$test" -c "$clients" -P "$pipeline" -n "$n" -d 100 --csv "$@" 2>/dev/null |
    awk -F'"' 'NR==2 { print $4, $10, $14 }')
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
    line="$line $(awk -F, -v n="$n" '$3=="task-clock" { cpu=$1 } $3=="context-switches" { cs=$1 }
      $3=="cpu-migrations" { mig=$1 } END { printf "%.1f %.2f %.3f", cpu*1000/n, cs/n, mig/n }' "$out")"
  fi
  echo "$line"
}

TESTS=${TESTS:-"set 1 1 1500; set 50 1 20000; set 200 1 40000;
get 1 1 20000; get 50 1 100000; get 200 1 100000;
incr 1 1 1500; incr 50 1 20000; incr 200 1 40000;
set 50 16 100000; get 50 16 200000"}
header=$(printf '%-12s %8s | %10s %7s %7s | %10s %7s %7s | %6s' test clients "fc ops/s" p50 p99 "redis ops/s" p50 p99 ratio)
[ "${PERF:-0}" = 1 ] && header="$header | per request: fc cpu_us cs mig | redis cpu_us cs mig"
echo "$header"
for round in $(seq "$ROUNDS"); do
  while read -r spec; do
    [ -z "$spec" ] && continue
    read -r test clients pipeline n <<<"$spec"
    n=$((n * N_SCALE))
    extra=(); [ "$test" != incr ] && extra=(-r 100000)   # INCR: one key
    read -r fr f50 f99 fcpu fcs fmig <<<"$(bench "$fc_pid" "$fc_port" "$test" "$clients" "$pipeline" "$n" "${extra[@]}")"
    read -r rr r50 r99 rcpu rcs rmig <<<"$(bench "$rd_pid" "$rd_port" "$test" "$clients" "$pipeline" "$n" "${extra[@]}")"
    name=$test; [ "$pipeline" != 1 ] && name="$test -P$pipeline"
    row=$(printf '%-12s %8s | %10.0f %7s %7s | %10.0f %7s %7s | %6.2f' "$name" "$clients" "$fr" "$f50" "$f99" \
      "$rr" "$r50" "$r99" "$(echo "$fr / $rr" | bc -l)")
    [ "${PERF:-0}" = 1 ] && row="$row | $fcpu $fcs $fmig | $rcpu $rcs $rmig"
    echo "$row"
  done < <(tr ';' '\n' <<<"$TESTS")
done
[ "${SKIP_RSS:-0}" = 1 ] && exit 0

# Memory per key on freshly started servers (after the runs above, the allocators hold on to
# pages that a FLUSHALL freed, which would hide the growth).
kill "$fc_pid" "$rd_pid"; wait "$fc_pid" "$rd_pid" 2>/dev/null || true
start_servers rss
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
keys=${RSS_KEYS:-1000000}
for who in fc rd; do
  pid=${who}_pid; port=${who}_port
  before=$(rss_kb "${!pid}")
  redis-benchmark -p "${!port}" -t set -n "$keys" -r "$keys" -d 100 -P 16 -c 50 -q >/dev/null 2>&1
  after=$(rss_kb "${!pid}")
  size=$(redis-cli -p "${!port}" dbsize)
  echo "$who: RSS $((before / 1024)) MiB -> $((after / 1024)) MiB for $size keys of 100 bytes:" \
    "$(( (after - before) * 1000000 / size / 1024 )) MiB per million keys"
done
