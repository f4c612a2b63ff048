#!/usr/bin/env bash
# CPU time per request of the server process (`perf stat -e task-clock -p PID`, over a fixed number
# of requests: a count, much less disturbed by other load than a throughput) for LRANGE of 100
# elements (a 200-element list of 100-byte elements), ZRANGEBYSCORE ... LIMIT 0 10 and ZSCORE on a
# sorted set of MEMBERS members (default 200,000), against a given ferrocask binary or redis-server
# (AOF always). instructions:u is printed too where the machine has a PMU (this VM has none: 0).
#
#   server/bench/read_cost.sh target/release/ferrocask after
#   server/bench/read_cost.sh redis redis
set -euo pipefail
bin=$1; label=$2; members=${MEMBERS:-200000}
work=$(mktemp -d /tmp/ranges-cost.XXXXXX); port=$((30000 + RANDOM % 5000))
if [ "$bin" = redis ]; then
  redis-server --port $port --bind 127.0.0.1 --dir $work --save '' --appendonly yes --appendfsync always --daemonize no >/dev/null 2>&1 & pid=$!
else
  "$bin" --dir $work/fc serve --port $port >/dev/null 2>&1 & pid=$!
fi
for _ in $(seq 100); do redis-cli -p $port ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p $port -n 200 -c 1 -d 100 RPUSH mylist __rand_int__xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx >/dev/null 2>&1
python3 - "$members" > $work/load <<'PY'
import sys
n = int(sys.argv[1]); out = sys.stdout.buffer
for lo in range(0, n, 100):
    args = [b"ZADD", b"z"]
    for i in range(lo, min(n, lo + 100)):
        args += [b"%d" % i, b"m:%012d" % i]
    out.write(b"*%d\r\n" % len(args))
    for x in args: out.write(b"$%d\r\n%s\r\n" % (len(x), x))
PY
redis-cli -p $port --pipe < $work/load >/dev/null 2>&1
sleep 1
run() { # n clients command...
  local n=$1 c=$2; shift 2
  perf stat -x, -e instructions:u,task-clock -p $pid -o $work/stat -- redis-benchmark -p $port -n $n -c $c -r $members -q "$@" >/dev/null 2>&1
  awk -F, -v n=$n -v what="$label $* -c $c" '/instructions/ { i = $1 } /task-clock/ { t = $1 } END { printf "%-60s %10.0f instr/req %8.1f us cpu/req\n", what, i / n, t * 1000 / n }' $work/stat
}
run 20000 50 LRANGE mylist 0 99
run 20000 1 LRANGE mylist 0 99
run 20000 1 ZRANGEBYSCORE z __rand_int__ +inf LIMIT 0 10
run 20000 1 ZSCORE z m:__rand_int__
kill $pid; wait $pid 2>/dev/null || true; rm -rf $work
