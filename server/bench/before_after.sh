#!/usr/bin/env bash
# Two builds of `ferrocask serve` side by side on the same disk, measured alternately (the order
# flips each round), so a change's cost on the hot path shows as a same-run ratio. Not a test;
# see BENCHMARKS.md. Build the old one in a worktree first, e.g.:
#   git worktree add --detach ../old <commit> && (cd ../old && cargo build --release -p ferrocask-cli)
#   OLD=../old/target/release/ferrocask NEW=target/release/ferrocask server/bench/before_after.sh
set -euo pipefail
OLD=${OLD:?path of the old ferrocask binary}; NEW=${NEW:-target/release/ferrocask}
command -v redis-benchmark >/dev/null || { echo "needs redis-benchmark: apt-get install -y redis-tools" >&2; exit 1; }
work=$(mktemp -d /tmp/ab.XXXXXX); po=$((30000 + RANDOM % 5000)); pn=$((po + 1))
$OLD --dir "$work/old" serve --port $po >/dev/null 2>&1 & op=$!
$NEW --dir "$work/new" serve --port $pn >/dev/null 2>&1 & np=$!
trap 'kill $op $np; wait; rm -rf $work' EXIT
for p in $po $pn; do for _ in $(seq 100); do redis-cli -p $p ping >/dev/null 2>&1 && break; sleep 0.1; done; done
bench() { redis-benchmark -p "$1" -t "$2" -c "$3" -P "$4" -n "$5" -d 100 -r 100000 --csv 2>/dev/null | awk -F'"' 'NR==2 { print $4 }'; }
printf '%-16s %10s %10s %7s\n' test old new new/old
for round in 1 2 3; do
  for spec in "set 50 1 20000" "set 1 1 2000" "incr 50 1 20000" "get 50 1 100000" "set 50 16 100000" "get 50 16 200000"; do
    read -r t c pl n <<<"$spec"
    if ((round % 2)); then o=$(bench $po $t $c $pl $n); nw=$(bench $pn $t $c $pl $n); else nw=$(bench $pn $t $c $pl $n); o=$(bench $po $t $c $pl $n); fi
    printf '%-16s %10.0f %10.0f %7.2f\n' "$t c$c P$pl" "$o" "$nw" "$(echo "$nw / $o" | bc -l)"
  done
done
