#!/bin/bash
# usage: cluster-write-ab.sh ROUNDS "NODES/SHARDS ..." BIN... (e.g. 2 "1/1 1/16 3/1 3/16" /tmp/base /tmp/new)
# Runs scripts/bench/cluster-write.sh (1000 rooms, window 4, 10 s) for each round,
# each NODES/SHARDS case and each binary in turn (A/B in the same minutes), and
# prints one line per run: acknowledged writes/s, the nodes' CPU (the load tools'
# `srv CPU s`, getrusage of the server processes over the step) and the
# PostgreSQL backends' CPU (cluster-write.sh's "during the load" line), each per
# acknowledged message, and the share of pg_stat_activity
# samples (every 0.2 s while the load runs) in which a node's backend waited on
# an advisory lock (wait_event 'advisory') among its active ones.
set -u
ROUNDS=$1; CASES=$2; shift 2
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
DIR=$(dirname "$0"); OUT=${OUT:-$(mktemp -d /tmp/cw-ab.XXXX)}; mkdir -p "$OUT"
printf '%-8s %-6s %-22s %8s %9s %9s %9s %9s %12s %s\n' time case bin acks/s node_us pg_us total_us acked adv/active load
for r in $(seq "$ROUNDS"); do
  for c in $CASES; do
    for bin in "$@"; do
      n=${c%/*}; s=${c#*/}; f=$OUT/r$r-n$n-s$s-$(basename "$bin")
      SHARDS=$s bash "$DIR/cluster-write.sh" "$bin" "$n" 1000 4 10s > "$f.out" 2>&1 &
      pid=$!; adv=0; act=0
      while kill -0 $pid 2>/dev/null; do
        read -r a b < <(psql "$PG" -AtF' ' -c "SELECT count(*) FILTER (WHERE wait_event = 'advisory'), count(*) FILTER (WHERE state = 'active') FROM pg_stat_activity WHERE application_name LIKE 'cw\_${pid}\_%'" 2>/dev/null)
        adv=$((adv + ${a:-0})); act=$((act + ${b:-0})); sleep 0.2
      done
      awk -v t="$(date -u +%H:%M:%S)" -v c="$c" -v bin="$(basename "$bin")" -v adv=$adv -v act=$act '
        /^uptime before/ {sub(/.*load average: /, ""); load=$0}
        /^postgres backends during the load/ {pg=$NF}
        /acks\/s/ {getline; acks += $3; srv += $(NF-1)}
        /^messages/ {acked += $4}
        END {printf "%-8s %-6s %-22s %8d %9.1f %9.1f %9.1f %9d %5d/%-6d %s\n", t, c, bin, acks, srv/acked*1e6, pg/acked*1e6, (srv+pg)/acked*1e6, acked, adv, act, load}' "$f.out"
    done
  done
done
