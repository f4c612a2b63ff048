#!/usr/bin/env bash
# CPU time per request of the server process (perf stat -e task-clock -p PID over a fixed count)
# for ZRANGE z 0 9 WITHSCORES and ZPOPMIN at 50 clients, on a sorted set of 100,000 members with
# whole scores: what the formatting of scores costs (BENCHMARKS.md, "Whole scores").
#
#   server/bench/score_cost.sh target/release/ferrocask after
set -euo pipefail
bin=$1; label=$2
work=$(mktemp -d /tmp/dbl.XXXXXX); port=$((30000 + RANDOM % 5000))
"$bin" --dir $work/fc serve --port $port >/dev/null 2>&1 & pid=$!
for _ in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
python3 - > $work/load <<'PY'
import sys
out = sys.stdout.buffer
for lo in range(0, 100000, 100):
    args = [b"ZADD", b"z"]
    for i in range(lo, lo + 100):
        args += [b"%d" % i, b"m:%012d" % i]
    out.write(b"*%d\r\n" % len(args))
    for x in args: out.write(b"$%d\r\n%s\r\n" % (len(x), x))
PY
redis-cli -p $port --pipe < $work/load >/dev/null 2>&1
run() { local n=$1 c=$2; shift 2
  perf stat -x, -e task-clock -p $pid -o $work/stat -- redis-benchmark -p $port -n $n -c $c -q "$@" >/dev/null 2>&1
  awk -F, -v n=$n -v what="$label $* -c $c" '/task-clock/ { t = $1 } END { printf "%-50s %8.1f us cpu/req\n", what, t * 1000 / n }' $work/stat
}
run 20000 50 ZRANGE z 0 9 WITHSCORES
run 20000 50 ZPOPMIN z
kill $pid; wait $pid 2>/dev/null || true; rm -rf $work
