#!/bin/sh
# Runs the given fuzz targets one after another from prebuilt binaries (no cargo involved),
# 15 minutes each, niced, one job. Usage: fuzz/run-all.sh target... (from fuzz/)
B=target/x86_64-unknown-linux-gnu/release
for t in "$@"; do
  case $t in
    record_decode) extra="-malloc_limit_mb=16" ;;
    segment_recover) extra="-max_len=20000" ;;
    *) extra="" ;;
  esac
  mkdir -p corpus-work/$t artifacts/$t logs-work
  nice -n 10 $B/$t corpus-work/$t corpus/$t -max_total_time=900 -print_final_stats=1 \
    -artifact_prefix=artifacts/$t/ $extra > logs-work/$t.log 2>&1
  echo "$t exit $?" >> logs-work/summary
done
