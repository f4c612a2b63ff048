#!/usr/bin/env bash
# The cluster against one node (issue 22's benchmark; not a test, see BENCHMARKS.md): a 3-node
# `ferrocask serve` cluster and a single-node `ferrocask serve`, all on this disk, measured with
# redis-benchmark in one run, interleaved (each round visits the targets in a rotated order), so
# the ratios are same-run ratios. SET and INCR of one hot key, 100-byte values, at 1, 16, 64 and
# 200 clients; through the leader and through a follower. Prints one line per measurement (ops/s,
# p50, p99 in ms) and the fsyncs per write (the leader's log syncs / writes; single node: its
# store's syncs / writes).
#   cargo build --release -p ferrocask-cli && server/bench/cluster.sh
#   BIN=path/to/ferrocask ROUNDS=3 CLIENTS="1 64" TESTS="set" server/bench/cluster.sh
set -euo pipefail
BIN=${BIN:-target/release/ferrocask}; ROUNDS=${ROUNDS:-2}; CLIENTS=${CLIENTS:-"1 16 64 200"}; TESTS=${TESTS:-"set incr"}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark: apt-get install -y redis-tools" >&2; exit 1; }
[ -x "$BIN" ] || { echo "no $BIN: cargo build --release -p ferrocask-cli" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/cluster-bench.XXXXXX"); base=$((20000 + RANDOM % 10000))
single=$base; c1=$((base + 1)); c2=$((base + 2)); c3=$((base + 3))
peers="1=127.0.0.1:$((base + 11)),2=127.0.0.1:$((base + 12)),3=127.0.0.1:$((base + 13))"
pids=()
"$BIN" --dir "$work/single" serve --port $single >/dev/null 2>"$work/single.log" & pids+=($!)
for n in 1 2 3; do
  "$BIN" --dir "$work/node-$n" serve --port $((base + n)) --node-id $n --peers "$peers" >/dev/null 2>"$work/node-$n.log" & pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null; wait; rm -rf "$work"' EXIT
role() { redis-cli -p "$1" info raft 2>/dev/null | tr -d '\r' | sed -n 's/^role://p'; }
field() { redis-cli -p "$1" info "$2" 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"; }
leader=; for _ in $(seq 300); do
  for p in $c1 $c2 $c3; do [ "$(role $p)" = leader ] && leader=$p; done
  [ -n "$leader" ] && [ "$(redis-cli -p $single ping 2>/dev/null)" = PONG ] && break; sleep 0.1
done
[ -n "$leader" ] || { echo "no leader elected; logs in $work" >&2; exit 1; }
follower=$c1; [ $follower = $leader ] && follower=$c2
syncs() { if [ "$1" = $single ]; then field "$1" persistence ferrocask_syncs; else field $leader raft log_syncs; fi; }
bench() { # port test clients requests -> "rps p50 p99"
  redis-benchmark -p "$1" -t "$2" -c "$3" -n "$4" -d 100 --csv 2>/dev/null |
    awk -F'"' 'NR==2 { printf "%s %s %s", $4, $10, $14 }'
}
printf '%-6s %-5s %4s %-8s %9s %8s %8s %12s\n' round test c target ops/s p50_ms p99_ms fsyncs/write
for round in $(seq "$ROUNDS"); do
  for t in $TESTS; do
    for c in $CLIENTS; do
      n=$((c * 250)); ((n < 3000)) && n=3000; ((n > 40000)) && n=40000
      targets=("single:$single" "leader:$leader" "follower:$follower")
      for i in 0 1 2; do
        k=$(( (i + round) % 3 )); name=${targets[$k]%%:*}; port=${targets[$k]##*:}
        before=$(syncs $port); read -r rps p50 p99 <<<"$(bench $port $t $c $n)"; after=$(syncs $port)
        printf '%-6s %-5s %4s %-8s %9.0f %8s %8s %12.3f\n' "$round" "$t" "$c" "$name" "$rps" "$p50" "$p99" \
          "$(echo "($after - $before) / $n" | bc -l)"
      done
    done
  done
done
