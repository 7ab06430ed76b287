#!/bin/bash
# usage: store-shards.sh ROUNDS
# Runs BenchmarkSendMessage's 1/3 nodes x 1/16 shards sub-benchmarks of the
# PostgreSQL store (internal/postgres/bench_test.go), alternated, ROUNDS times,
# each run sampling pg_stat_activity 40 times for the benchmark's sessions waiting
# on an advisory lock (the positions locks). Prints the load average and time of
# each run. The machine is shared: compare runs of the same window.
set -u
ROUNDS=${1:-2}
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
BIN=$(mktemp /tmp/pgbench.XXXX)
trap 'rm -f $BIN' EXIT
go test -c -o $BIN ./internal/postgres/ || exit 1
run() {
  local out; out=$(mktemp)
  ( PARLEY_TEST_POSTGRES=$PG /usr/bin/time -f "cpu_user=%U cpu_sys=%S wall=%e" $BIN -test.run '^$' \
      -test.bench "BenchmarkSendMessage/$1\$" -test.benchtime 8s -test.count 1 > $out 2>&1 ) &
  local p=$! samples=0 hit=0 waits=0
  sleep 3
  while kill -0 $p 2>/dev/null && [ $samples -lt 40 ]; do
    local r w
    r=$(psql "$PG" -Atc "select count(*) filter (where wait_event='advisory') from pg_stat_activity where application_name='parley-bench-send'")
    w=${r:-0}; waits=$((waits + w)); samples=$((samples + 1)); [ "$w" -gt 0 ] && hit=$((hit + 1))
    sleep 0.1
  done
  wait $p
  grep -E "msgs/s|cpu_user|FAIL|panic" $out
  echo "lock-wait samples: $hit of $samples had a session waiting ($waits waiting sessions in all)"
  rm -f $out
}
for round in $(seq $ROUNDS); do
  for n in 3Nodes/1Shards 3Nodes/16Shards 1Nodes/1Shards 1Nodes/16Shards; do
    echo "=== round $round $n  $(date -u +%H:%M:%S)  $(uptime | sed 's/.*load/load/')"
    run "$n/64Convs/Parallel64"
  done
done
echo "=== end $(date -u +%H:%M:%S) $(uptime | sed 's/.*load/load/')"
