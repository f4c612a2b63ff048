#!/usr/bin/env bash
# Collections (issue 23): redis-benchmark's list, set, hash and sorted-set tests against
# `ferrocask serve` (release build, default --appendfsync always) and redis-server with
# appendonly yes, appendfsync always, both on the same disk (a directory under $BENCH_DIR, default
# /tmp), interleaved: each test at each client count runs on both servers before the next, the
# first of the two alternating by round, so a slow-fsync spell hits both. Prints, per test, the
# median ops/s of each and the median of the per-round ratios (with their min-max).
# Then a million-member hash, set and sorted set on freshly started servers: time to build
# (redis-cli --pipe, 100 members per command, the same file for both), RSS and disk bytes per
# member, and ZADD / ZRANGEBYSCORE latency at that size. Not a test; see BENCHMARKS.md.
#
#   server/bench/collections.sh                    # build release, ROUNDS=3, 1,000,000 members
#   ROUNDS=5 MEMBERS=200000 server/bench/collections.sh
#   PARTS=table server/bench/collections.sh        # only the redis-benchmark table (or: million)
#   FERROCASK_BIN=/path/to/ferrocask TESTS=lrange_100 PARTS=table server/bench/collections.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
MEMBERS=${MEMBERS:-1000000}
PARTS=${PARTS:-table,million}
N1=${N1:-3000}     # requests per test at 1 client
N50=${N50:-20000}  # requests per test at 50 clients
BENCH_DIR=${BENCH_DIR:-/tmp}
TESTS=${TESTS:-lpush rpush lpop rpop sadd hset spop zadd zpopmin lrange_100}
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || {
  echo "needs redis-server and redis-benchmark: apt-get install -y redis-server redis-tools" >&2; exit 1; }
# FERROCASK_BIN: a ferrocask binary built beforehand (e.g. the commit before a change), run as is.
if [ -n "${FERROCASK_BIN:-}" ]; then
  bin=$FERROCASK_BIN
else
  CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo build --release -q -p ferrocask-cli
  bin=${CARGO_TARGET_DIR:-target}/release/ferrocask
fi
work=$(mktemp -d "$BENCH_DIR/ferrocask-collections.XXXXXX")
fc_port=$((20000 + RANDOM % 10000)); rd_port=$((fc_port + 1))
fc_pid=; rd_pid=
cleanup() { kill $fc_pid $rd_pid 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
# Starts both servers on fresh directories under $work/$1; further arguments go to redis-server.
start_servers() {
  mkdir -p "$work/$1/redis"
  "$bin" --dir "$work/$1/fc" serve --port "$fc_port" > "$work/$1/fc.log" 2>&1 &
  fc_pid=$!
  redis-server --port "$rd_port" --bind 127.0.0.1 --dir "$work/$1/redis" --save '' \
    --appendonly yes --appendfsync always --daemonize no "${@:2}" > "$work/$1/redis.log" 2>&1 &
  rd_pid=$!
  for port in "$fc_port" "$rd_port"; do
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  done
}
stop_servers() { kill "$fc_pid" "$rd_pid"; wait "$fc_pid" "$rd_pid" 2>/dev/null || true; fc_pid=; rd_pid=; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One redis-benchmark run of one test; prints its ops/s. -r: random members for SADD, HSET and
# ZADD (without it every request writes the same member). lrange_100 first runs its own LPUSHes
# (a row of their own); the LRANGE row is the one kept.
bench() { # port test clients n
  redis-benchmark -p "$1" -t "$2" -c "$3" -n "$4" -d 100 -r 100000 --csv 2>/dev/null |
    awk -F'"' -v t="$2" 'NR > 1 && (t !~ /^lrange/ || $2 ~ /^LRANGE/) { r = $4 } END { print r }'
}

if [[ $PARTS == *table* ]]; then
  start_servers table
  res=$work/results; : > "$res"
  echo "redis-benchmark -d 100 -r 100000, -n $N1 at 1 client, -n $N50 at 50; $ROUNDS rounds" >&2
  for round in $(seq "$ROUNDS"); do
    for clients in 1 50; do
      n=$N1; [ "$clients" = 50 ] && n=$N50
      # The servers keep their data across rounds; per server the tests run in the same order,
      # so the pops find what the pushes (and SADD, ZADD) left.
      for test in $TESTS; do
        if (( round % 2 )); then f=$(bench "$fc_port" "$test" "$clients" "$n"); r=$(bench "$rd_port" "$test" "$clients" "$n")
        else r=$(bench "$rd_port" "$test" "$clients" "$n"); f=$(bench "$fc_port" "$test" "$clients" "$n"); fi
        echo "$test $clients $round $f $r" | tee -a "$res" >&2
      done
    done
  done
  printf '\n%-11s %7s | %12s %12s | %6s %s\n' test clients "fc ops/s" "redis ops/s" ratio "(per-round min-max)"
  for test in $TESTS; do
    for clients in 1 50; do
      rows=$(awk -v t="$test" -v c="$clients" '$1 == t && $2 == c' "$res")
      f=$(awk '{ print $4 }' <<<"$rows" | median)
      r=$(awk '{ print $5 }' <<<"$rows" | median)
      ratios=$(awk '{ printf "%.3f\n", $4 / $5 }' <<<"$rows")
      printf '%-11s %7s | %12.0f %12.0f | %6.2f (%s-%s)\n' "$test" "$clients" "$f" "$r" \
        "$(median <<<"$ratios")" "$(sort -g <<<"$ratios" | head -1)" "$(sort -g <<<"$ratios" | tail -1)"
    done
  done
  redis-cli -p "$fc_port" info server 2>/dev/null | grep -q . || echo "ferrocask did not answer after the table" >&2
  stop_servers
fi

if [[ $PARTS == *million* ]]; then
  # The same RESP files for both: HSET h, SADD s and ZADD z, 100 members per command. Members
  # are m:<12 digits> (redis-benchmark's __rand_int__ names them); a sorted-set member's score
  # is its number, so ZRANGEBYSCORE z a +inf LIMIT 0 10 starts at member a.
  for kind in HSET SADD ZADD; do
    python3 - "$MEMBERS" "$kind" > "$work/load.$kind" <<'EOF'
import sys
n, kind = int(sys.argv[1]), sys.argv[2].encode()
key = {b"HSET": b"h", b"SADD": b"s", b"ZADD": b"z"}[kind]
out = sys.stdout.buffer
for lo in range(0, n, 100):
    args = [kind, key]
    for i in range(lo, min(n, lo + 100)):
        m = b"m:%012d" % i
        if kind == b"HSET": args += [m, b"value:%08d" % i]
        elif kind == b"SADD": args.append(m)
        else: args += [b"%d" % i, m]
    out.write(b"*%d\r\n" % len(args))
    for x in args:
        out.write(b"$%d\r\n%s\r\n" % (len(x), x))
EOF
  done
  # Redis's automatic AOF rewrite (at 64 MB) would replace the AOF by a compacted base during the
  # load and hide the per-member bytes.
  start_servers million --auto-aof-rewrite-percentage 0
  rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
  printf '\n%s members per collection, 100 per command through redis-cli --pipe\n' "$MEMBERS"
  printf '%-10s %-5s %8s %10s %12s %12s\n' server type "build s" "members/s" "RSS B/member" "disk B/member"
  for kind in HSET SADD ZADD; do
    for who in fc rd; do
      pid=${who}_pid; port=${who}_port; dir=$work/million/fc; [ $who = rd ] && dir=$work/million/redis
      before=$(rss_kb "${!pid}"); disk0=$(du -sb "$dir" | cut -f1)
      t0=$(date +%s.%N)
      redis-cli -p "${!port}" --pipe < "$work/load.$kind" > "$work/pipe.$who.$kind" 2>&1
      t1=$(date +%s.%N)
      sleep 1
      after=$(rss_kb "${!pid}"); disk1=$(du -sb "$dir" | cut -f1)
      case $kind in HSET) card=$(redis-cli -p "${!port}" hlen h) ;; SADD) card=$(redis-cli -p "${!port}" scard s) ;;
                    ZADD) card=$(redis-cli -p "${!port}" zcard z) ;; esac
      [ "$card" = "$MEMBERS" ] || echo "$who $kind: $card members, not $MEMBERS: $(tail -2 "$work/pipe.$who.$kind")" >&2
      printf '%-10s %-5s %8.1f %10.0f %12.0f %12.0f\n' "$who" "$kind" "$(echo "$t1 - $t0" | bc -l)" \
        "$(echo "$MEMBERS / ($t1 - $t0)" | bc -l)" "$(( (after - before) * 1024 / MEMBERS ))" \
        "$(( (disk1 - disk0) / MEMBERS ))"
    done
  done
  # Latency at that size, interleaved per test: ZADD of new members, ZRANGEBYSCORE at random
  # offsets (10 members), ZSCORE of existing members; p50 / p99 in ms and ops/s.
  printf '\n%-40s %7s | %22s | %22s\n' "command (size $MEMBERS)" clients "fc ops/s p50 p99" "redis ops/s p50 p99"
  lat() { # port clients n command...
    local port=$1 c=$2 n=$3; shift 3
    redis-benchmark -p "$port" -c "$c" -n "$n" -r "$MEMBERS" --csv "$@" 2>/dev/null |
      awk -F'"' 'NR == 2 { printf "%8.0f %6s %6s", $4, $10, $14 }'
  }
  for round in $(seq "$ROUNDS"); do
    for spec in "1 3000 ZADD z __rand_int__ new:__rand_int__" "50 20000 ZADD z __rand_int__ new:__rand_int__" \
                "1 10000 ZRANGEBYSCORE z __rand_int__ +inf LIMIT 0 10" "50 50000 ZRANGEBYSCORE z __rand_int__ +inf LIMIT 0 10" \
                "1 10000 ZSCORE z m:__rand_int__"; do
      read -r c n cmd <<<"$spec"
      # shellcheck disable=SC2086
      if (( round % 2 )); then f=$(lat "$fc_port" "$c" "$n" $cmd); r=$(lat "$rd_port" "$c" "$n" $cmd)
      else r=$(lat "$rd_port" "$c" "$n" $cmd); f=$(lat "$fc_port" "$c" "$n" $cmd); fi
      printf '%-40s %7s | %22s | %22s\n' "$(cut -d' ' -f1,2,3,4 <<<"$cmd")" "$c" "$f" "$r"
    done
  done
fi
