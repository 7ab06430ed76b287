#!/bin/bash
# usage: cluster-write.sh BIN NODES ROOMS WINDOW DURATION
# Starts NODES `BIN serve` processes on one PostgreSQL schema of their own (in
# $PG, default the test database) and the machine's NATS (a subject of their own),
# and drives each with its own `BIN bench write --url` process, ROOMS/NODES rooms
# of WINDOW sends in flight each, all at once for DURATION. Prints each load tool's
# summary, the CPU time of the nodes' PostgreSQL backends (in all, and since the
# load started), and the sum of
# acknowledged writes/s, with the load average before/after.
# The nodes' rate limits are off (the load comes from one address). For A/B runs
# of 1 vs 3 nodes, run both in the same window: the machine is shared.
# SHARDS (default 0: the database's, 1 for a new one) is the nodes' --shards.
set -u
BIN=$1; NODES=$2; ROOMS=$3; WINDOW=$4; DUR=$5
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
NATS=${NATS:-nats://127.0.0.1:4222}
SHARDS=${SHARDS:-0}
STATE=$(mktemp -d /tmp/cluster-write.XXXX)
SCHEMA=cw_$$_$RANDOM
SECRET=cluster-write-bench-secret-0123456789abcdef
psql "$PG" -qc "CREATE SCHEMA $SCHEMA" || exit 1
trap 'kill ${PIDS[@]} 2>/dev/null; wait; psql "$PG" -qc "SET client_min_messages = warning; DROP SCHEMA $SCHEMA CASCADE"; rm -rf $STATE' EXIT
PIDS=(); PORTS=()
for i in $(seq 0 $((NODES-1))); do
  PORT=$((20000 + RANDOM % 10000)); PORTS+=($PORT)
  mkdir -p $STATE/n$i
  PARLEY_SECRET=$SECRET $BIN serve --addr 127.0.0.1:$PORT --data-dir $STATE/n$i --log-level warn \
    --store "$PG&search_path=$SCHEMA&application_name=$SCHEMA" --shards $SHARDS --broker "$NATS?subject=parley.cw.$SCHEMA" --node-id n$i \
    --messages-per-second=-1 --ip-messages-per-second=-1 --typing-per-second=-1 \
    --connects-per-second=-1 --presence-per-second=-1 --reads-per-second=-1 \
    --conversation-writes-per-second=-1 --read-marks-per-second=-1 --deletes-per-second=-1 \
    --uploads-per-second=-1 --conns-per-ip=-1 > $STATE/n$i/server.log 2>&1 &
  PIDS+=($!)
  # The first node migrates the schema alone; the others start after it.
  for t in $(seq 150); do curl -sf http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
done
echo "uptime before: $(uptime)"
# The nodes' PostgreSQL backends' CPU ticks now (found by application_name):
# what the start-up (migrations, warm-up) cost is left out of the figure below.
declare -A T0
for p in $(psql "$PG" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = '$SCHEMA'"); do
  read -r -a f < /proc/$p/stat && T0[$p]=$((f[13] + f[14]))
done
LOADS=()
for i in $(seq 0 $((NODES-1))); do
  PARLEY_SECRET=$SECRET $BIN bench write --url http://127.0.0.1:${PORTS[$i]} --server-pid ${PIDS[$i]} \
    --rooms $((ROOMS / NODES)) --window $WINDOW --duration $DUR > $STATE/load$i.out 2>&1 &
  LOADS+=($!)
done
wait ${LOADS[@]}
# The CPU time of the nodes' PostgreSQL backends (found by application_name),
# read while the nodes still hold their connections: the database's share of
# the cost per message, which the load tools' figures leave out.
S=0; N=0; L=0
for p in $(psql "$PG" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = '$SCHEMA'"); do
  read -r -a f < /proc/$p/stat && S=$((S + f[13] + f[14])) && L=$((L + f[13] + f[14] - ${T0[$p]:-0})) && N=$((N + 1))
done
echo "postgres backends: $N, CPU s: $(awk -v t=$S -v h=$(getconf CLK_TCK) 'BEGIN {printf "%.2f", t / h}')"
# The same, since the load tools started (a backend opened since counts whole).
echo "postgres backends during the load, CPU s: $(awk -v t=$L -v h=$(getconf CLK_TCK) 'BEGIN {printf "%.2f", t / h}')"
echo "uptime after: $(uptime)"
for i in $(seq 0 $((NODES-1))); do echo "--- node n$i"; cat $STATE/load$i.out; done
# acks/s is the third column of the row under the table's header.
echo "--- sum of acknowledged writes/s over $NODES node(s): $(awk '/acks\/s/ {getline; s += $3} END {print s}' $STATE/load*.out)"
