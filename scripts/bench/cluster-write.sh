#!/bin/bash
# usage: cluster-write.sh BIN NODES ROOMS WINDOW DURATION
# Starts NODES `BIN serve` processes on one PostgreSQL schema of their own (in
# $PG, default the test database) and the machine's NATS (a subject of their own),
# and drives each with its own `BIN bench write --url` process, ROOMS/NODES rooms
# of WINDOW sends in flight each, all at once for DURATION. Prints each load tool's
# summary, the CPU time of the nodes' PostgreSQL backends (during the load,
# and over the nodes' life), and the sum of
# acknowledged writes/s, with the load average before/after.
# The nodes' rate limits are off (the load comes from one address). For A/B runs
# of 1 vs 3 nodes, run both in the same window: the machine is shared.
# TOOL (default BIN) is the binary whose `bench write` drives the nodes: give
# the base binary for both sides of an A/B.
# SHARDS (default 0: the database's, 1 for a new one) is the nodes' --shards.
# NODE_CPU (say 0.2; default none) gives each node a CPU budget of its own, that
# fraction of one core, with a cgroup's CFS quota (needs root): a stand-in for
# nodes on machines of their own, while PostgreSQL, NATS and the load tools
# share what is left of this machine. Without it, every node competes for the
# same cores, and N nodes can do no more than one node that already fills them.
# The schema's table and index counters are snapshotted when the load
# starts and after it ends, and printed as deltas per message inserted
# (per table: rows inserted, updated, HOT-updated, scans, heap buffer
# accesses; per index: scans, entries read and fetched, buffer accesses,
# a proxy for b-tree descents and entries written).
# PERACK=1: node n0 also serves /metrics (its port + 1) and pprof (+ 2),
# and from 2 s into the load a 6 s window counts on n0, per acknowledged
# message: `perf stat` (CPU, context switches, syscalls by kind; XEV adds
# events, e.g. a uprobe on runtime.newproc1) and Go's mallocs; or, with
# PROF=file, a 6 s CPU profile instead; ALLOCS=prefix, two allocs profiles
# 6 s apart; REC=event, a `perf record -g` of that event (/tmp/perack-rec.data).
# METRICS=file (with PERACK=1): n0's /metrics when the load ends (the store's
# stage histograms: parley_store_stage_seconds). PGREC=file: a `perf record
# -F 999` of the schema's PostgreSQL backends, 5 s from 2 s into the load.
set -u
BIN=$1; NODES=$2; ROOMS=$3; WINDOW=$4; DUR=$5
PG=${PG:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
NATS=${NATS:-nats://127.0.0.1:4222}
SHARDS=${SHARDS:-0}
# A binary from before log shards (19cd3c7, say) has no --shards.
SHARDFLAG="--shards $SHARDS"; $BIN serve --help 2>&1 | grep -q -- --shards || SHARDFLAG=
STATE=$(mktemp -d /tmp/cluster-write.XXXX)
SCHEMA=cw_$$_$RANDOM
SECRET=cluster-write-bench-secret-0123456789abcdef
psql "$PG" -qc "CREATE SCHEMA $SCHEMA" || exit 1
CGROUPS=()
# budget PID NAME: put PID in a cgroup of its own with a quota of NODE_CPU cores.
budget() {
  local q; q=$(awk -v c="$NODE_CPU" 'BEGIN {printf "%d", c * 100000}')
  if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    local g=/sys/fs/cgroup/$2; mkdir -p $g && echo "$q 100000" > $g/cpu.max
  else
    local g=/sys/fs/cgroup/cpu/$2; mkdir -p $g && echo 100000 > $g/cpu.cfs_period_us && echo $q > $g/cpu.cfs_quota_us
  fi || { echo "cannot set a CPU budget (root and a cgroup cpu controller are needed)"; exit 1; }
  echo $1 > $g/cgroup.procs && CGROUPS+=($g)
}
trap 'kill ${PIDS[@]} 2>/dev/null; wait; for g in ${CGROUPS[@]}; do rmdir $g; done; psql "$PG" -qc "SET client_min_messages = warning; DROP SCHEMA $SCHEMA CASCADE"; rm -rf $STATE' EXIT
. "$(dirname "$0")/freeport.sh"
PIDS=(); PORTS=()
for i in $(seq 0 $((NODES-1))); do
  PORT=$(free_port 3); PORTS+=($PORT)
  mkdir -p $STATE/n$i
  PARLEY_SECRET=$SECRET $BIN serve --addr 127.0.0.1:$PORT --data-dir $STATE/n$i --log-level warn \
    --store "$PG&search_path=$SCHEMA&application_name=$SCHEMA" $SHARDFLAG --broker "$NATS?subject=parley.cw.$SCHEMA" --node-id n$i \
    --messages-per-second=-1 --ip-messages-per-second=-1 --typing-per-second=-1 \
    --connects-per-second=-1 --presence-per-second=-1 --reads-per-second=-1 \
    --conversation-writes-per-second=-1 --read-marks-per-second=-1 --deletes-per-second=-1 \
    --uploads-per-second=-1 --conns-per-ip=-1 ${PERACK:+--metrics-addr 127.0.0.1:$((PORT+1)) --pprof-addr 127.0.0.1:$((PORT+2))} > $STATE/n$i/server.log 2>&1 &
  PIDS+=($!)
  [ -n "${NODE_CPU:-}" ] && budget $! $SCHEMA-n$i
  # The first node migrates the schema alone; the others start after it.
  for t in $(seq 150); do curl -sf -m 2 http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
done
echo "uptime before: $(uptime)"
[ -n "${NODE_CPU:-}" ] && echo "each node's CPU budget: $NODE_CPU of a core (CFS quota)"
LOADS=()
for i in $(seq 0 $((NODES-1))); do
  PARLEY_SECRET=$SECRET ${TOOL:-$BIN} bench write --url http://127.0.0.1:${PORTS[$i]} --server-pid ${PIDS[$i]} \
    --rooms $((ROOMS / NODES)) --window $WINDOW --duration $DUR > $STATE/load$i.out 2>&1 &
  LOADS+=($!)
done
# The CPU time of the nodes' PostgreSQL backends (found by application_name)
# from the load's start (its clients connected: the users and rooms it
# makes are not counted) to its end: the database's share of the cost per
# message, which the load tools' figures leave out. With it, what the whole
# cluster wrote to the WAL and the checkpoints meanwhile (other sessions'
# too), and this schema's table counters (updates, HOT updates, dead rows).
pgcpu() { local S=0 N=0; for p in $(psql "$PG" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = '$SCHEMA'"); do
  read -r -a f < /proc/$p/stat && S=$((S + f[13] + f[14])) && N=$((N + 1)); done; echo "$N $S"; }
until grep -q "connected in" $STATE/load0.out 2>/dev/null; do sleep 0.05; kill -0 ${LOADS[0]} 2>/dev/null || break; done
read -r N0 S0 <<< "$(pgcpu)"
# pgstats: the schema's counters, one line per table or index.
pgstats() { psql "$PG" -AtF' ' -c "SELECT 't', t.relname, t.n_tup_ins, t.n_tup_upd, t.n_tup_hot_upd, t.seq_scan, COALESCE(t.idx_scan, 0), io.heap_blks_hit + io.heap_blks_read FROM pg_stat_user_tables t JOIN pg_statio_user_tables io USING (relid) WHERE t.schemaname = '$SCHEMA'
  UNION ALL SELECT 'i', s.relname || '.' || s.indexrelname, s.idx_scan, s.idx_tup_read, s.idx_tup_fetch, io.idx_blks_hit + io.idx_blks_read, 0, 0 FROM pg_stat_user_indexes s JOIN pg_statio_user_indexes io USING (indexrelid) WHERE s.schemaname = '$SCHEMA'"; }
pgstats > $STATE/stats0
if [ -n "${PGREC:-}" ]; then PGP=$(psql "$PG" -Atc "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = '$SCHEMA'")
  (sleep 2; perf record -F 999 -p $PGP -o $PGREC -- sleep 5 >/dev/null 2>&1) & PERFP2=$!; fi
PERFP=
if [ -n "${PERACK:-}" ]; then
( sleep 2; M=http://127.0.0.1:$((PORTS[0]+1))/metrics
  acks() { curl -s $M | awk '/^parley_send_ack_seconds_count{transport="ws"}/{print $2}'; }
  A0=$(acks); M0=$(curl -s $M | awk '/^go_memstats_mallocs_total/{printf "%d", $2}')
  if [ -n "${ALLOCS:-}" ]; then curl -s "http://127.0.0.1:$((PORTS[0]+2))/debug/pprof/allocs" > $ALLOCS.0; sleep 6; curl -s "http://127.0.0.1:$((PORTS[0]+2))/debug/pprof/allocs" > $ALLOCS.1
  elif [ -n "${REC:-}" ]; then perf record -e $REC -g -p ${PIDS[0]} -o /tmp/perack-rec.data -- sleep 4 2>/dev/null
  elif [ -n "${PROF:-}" ]; then curl -s "http://127.0.0.1:$((PORTS[0]+2))/debug/pprof/profile?seconds=6" > $PROF
  else perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sched_yield,syscalls:sys_enter_tgkill,syscalls:sys_enter_getpid,syscalls:sys_enter_rt_sigreturn${XEV:+,$XEV} -p ${PIDS[0]} -o $STATE/perf -- sleep 6; fi
  A1=$(acks); N=$((A1-A0)); M1=$(curl -s $M | awk '/^go_memstats_mallocs_total/{printf "%d", $2}'); echo "== perf window acks $N mallocs/ack $(awk -v a=$((M1-M0)) -v n=$N 'BEGIN{printf "%.1f", a/n}')"
  [ -f $STATE/perf ] && awk -F, -v n=$N '$1 ~ /^[0-9.]+$/ {printf "  %-40s %12s  per ack %.3f\n", $3, $1, $1/n}' $STATE/perf ) &
PERFP=$!
fi
W0=$(psql "$PG" -Atc "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
B0=$(psql "$PG" -Atc "SELECT checkpoints_timed + checkpoints_req, buffers_backend FROM pg_stat_bgwriter")
wait ${LOADS[@]}
[ -n "${METRICS:-}" ] && [ -n "${PERACK:-}" ] && curl -s http://127.0.0.1:$((PORTS[0]+1))/metrics > $METRICS
[ -n "$PERFP" ] && wait $PERFP
[ -n "${PGREC:-}" ] && wait $PERFP2
# The search indexer steps 100 ms after the last commit: count that step.
sleep 0.5
read -r N1 S1 <<< "$(pgcpu)"
# The statistics reach shared memory at a backend's commit at most once a second.
sleep 1.2; pgstats > $STATE/stats1
W1=$(psql "$PG" -Atc "SELECT wal_records, wal_fpi, wal_bytes FROM pg_stat_wal")
B1=$(psql "$PG" -Atc "SELECT checkpoints_timed + checkpoints_req, buffers_backend FROM pg_stat_bgwriter")
echo "cluster-wide during the load (all sessions, not only this node's): wal records|fpi|bytes $W0 -> $W1; checkpoints|buffers_backend $B0 -> $B1"
psql "$PG" -Atc "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_dead_tup, idx_scan, seq_scan FROM pg_stat_user_tables WHERE schemaname = '$SCHEMA' AND (n_tup_ins + n_tup_upd) > 0 ORDER BY relname" | sed 's/^/table: /'
awk 'NR == FNR { a[$1 " " $2] = $0; next } { split(a[$1 " " $2], o, " "); for (i = 3; i <= 8; i++) d[$1 " " $2, i] = $i - o[i]; k[++n] = $1 " " $2 }
  $1 == "t" && $2 == "messages" { m = $3 - o[3] }
  END { printf "per message inserted (%d messages; t: ins upd hot_upd seq_scan idx_scan heap_buffers, i: scans tup_read tup_fetch buffers):\n", m
    for (j = 1; j <= n; j++) { split(k[j], f, " "); if (d[k[j], 3] + d[k[j], 4] + d[k[j], 6] == 0) continue
      printf "  %s %-55s", f[1], f[2]; for (i = 3; i <= (f[1] == "t" ? 8 : 6); i++) printf " %8.3f", d[k[j], i] / (m ? m : 1); printf "\n" } }' $STATE/stats0 $STATE/stats1
echo "postgres backends during the load: $N0 then $N1, CPU s: $(awk -v t=$((S1 - S0)) -v h=$(getconf CLK_TCK) 'BEGIN {printf "%.2f", t / h}')"
# The same over the nodes' whole life (migrations, users and rooms
# included), read while they still hold their connections (the figure
# docs/benchmarks.md gave before h-pgsend).
S=0; N=0
for p in $(psql "$PG" -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = '$SCHEMA'"); do
  read -r -a f < /proc/$p/stat && S=$((S + f[13] + f[14])) && N=$((N + 1))
done
echo "postgres backends: $N, CPU s: $(awk -v t=$S -v h=$(getconf CLK_TCK) 'BEGIN {printf "%.2f", t / h}')"
echo "uptime after: $(uptime)"
for i in $(seq 0 $((NODES-1))); do echo "--- node n$i"; cat $STATE/load$i.out; done
# acks/s is the third column of the row under the table's header.
echo "--- sum of acknowledged writes/s over $NODES node(s): $(awk '/acks\/s/ {getline; s += $3} END {print s}' $STATE/load*.out)"
