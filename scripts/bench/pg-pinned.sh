#!/bin/bash
# usage: pg-pinned.sh BIN [ROOMS WINDOW DURATION]   (default 1000 4 10s, cluster-write.sh's)
# Pinned PostgreSQL writes for one node: starts a PRIVATE PostgreSQL instance
# (initdb into a temporary directory, run as the postgres user, listening only
# on 127.0.0.1 at a free port, its socket in that directory) pinned to CPU
# $PGCPU (default 1) with `taskset`, one `BIN serve` node on it (--store, the
# memory broker: one node needs no NATS; rate limits off as in
# cluster-write.sh) pinned to CPU 1, and `$TOOL bench write` (TOOL defaults to
# BIN) pinned to CPU 0, ROOMS rooms of WINDOW sends in flight for DURATION.
#   PGCPU=1: "one server core": the node and its database share CPU 1, the
#            load tool alone on CPU 0.
#   PGCPU=0: the node alone on CPU 1; PostgreSQL shares CPU 0 with the tool.
# The instance's settings follow the machine's own instance where they matter
# for writes (shared_buffers 128MB, max_connections 100, fsync and
# synchronous_commit on, wal_level replica, full_page_writes on, autovacuum
# off, max_wal_size 1GB, min_wal_size 80MB); its data directory is under
# $PGTMP (default /var/tmp, on the same disk as /var/lib/postgresql: the
# fsyncs cost what they cost there). The machine's own PostgreSQL service is
# never touched. The instance is stopped and its directory removed on any
# exit (trap), failures included.
# PGOPTS="-c name=value ...": more settings for the instance (e.g. -c shared_buffers=1GB;
# 2026-12-06 13:38: 13,602 / 14,702 acks/s with 1GB against 13,623 / 13,920 with 128MB, PGCPU=1).
# Prints the load tool's summary (acks/s, the node's CPU per ack from
# --server-pid), the CPU time during the load (from the load tool's clients
# connected to its end, as cluster-write.sh counts) of the node's PostgreSQL
# backends (found by application_name) and of the whole instance (every
# process under its postmaster: WAL writer, checkpointer, ...), each also per
# acknowledged message, how long the node's threads and each PostgreSQL
# process waited on a run queue for their core (schedstat), the load tool's
# CPU, each core's busy share during the load (/proc/stat: whatever else runs
# on the machine counts too), and the load average before/after.
# PROF=file: a 6 s CPU profile of the node (pprof) from 2 s into the load.
# METRICS=file: the node's /metrics (its port + 2) when the load ends: the
# store's batch sizes and stage histograms (parley_store_batch_ops,
# parley_store_stage_seconds; scripts/bench/metrics-quantiles.py).
# GOROUTINES=file: the node's goroutines (pprof goroutine?debug=1: counts per stack)
# 5 s into the load, to see where writes wait.
# TRACE=file: a 3 s execution trace of the node from 2 s into the load (e.g.
# `go tool trace -pprof=net file`: the batcher's waits for PostgreSQL's
# answers, under postgres.(*batcher).loop).
# PGSTAT=file: preload pg_stat_statements in the instance (track=all: statements inside
# functions and DO too) and save its top 20 statements by execution time when the load ends
# (exec_ms is the backends' time in the statement: CPU and waits).
# PGREC=file: a `perf record -F 999 -g` of the instance's processes, 5 s from
# 2 s into the load (`perf report -i file --no-children --sort comm,sym`).
# PGWAITS=file: what the node's backends were doing, sampled every 10 ms for 4 s
# from 2 s into the load (pg_stat_activity: state, wait event, the first words
# of the statement; a psql on CPU 1), counted per backend, most frequent first:
# "idle in transaction" after a statement is the backend waiting for the node.
# Run it under `flock /tmp/bench.lock` like every timed run on this machine.
set -u
BIN=$1; ROOMS=${2:-1000}; WINDOW=${3:-4}; DUR=${4:-10s}
PGCPU=${PGCPU:-1}
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
[ -x "$PGBIN/initdb" ] || { echo "no initdb in '$PGBIN' (set PGBIN)"; exit 1; }
SECRET=pg-pinned-bench-secret-0123456789abcdef
APP=pgpinned_$$
# A binary from before log shards (19cd3c7, say) has no --shards.
SHARDFLAG="--shards ${SHARDS:-0}"; $BIN serve --help 2>&1 | grep -q -- --shards || SHARDFLAG=
TMPD=$(mktemp -d ${PGTMP:-/var/tmp}/pg-pinned.XXXX) || exit 1
chown postgres: $TMPD
SPID=; LOAD=
cleanup() {
  [ -n "$LOAD" ] && kill $LOAD 2>/dev/null && wait $LOAD 2>/dev/null
  [ -n "$SPID" ] && kill $SPID 2>/dev/null && wait $SPID 2>/dev/null
  if [ -f $TMPD/data/postmaster.pid ]; then
    runuser -u postgres -- $PGBIN/pg_ctl -D $TMPD/data -m immediate -w stop >/dev/null 2>&1
  fi
  rm -rf $TMPD
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# A free port: none listening on it (the machine's instance is on 5432).
while :; do PGPORT=$((30000 + RANDOM % 10000)); ss -Hltn "sport = :$PGPORT" | grep -q . || break; done
runuser -u postgres -- $PGBIN/initdb -D $TMPD/data -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 --no-sync > $TMPD/initdb.log 2>&1 \
  || { cat $TMPD/initdb.log; exit 1; }
# The postmaster and every backend it forks inherit the taskset mask.
taskset -c $PGCPU runuser -u postgres -- $PGBIN/pg_ctl -D $TMPD/data -l $TMPD/pg.log -w -t 60 start -o "\
 -c port=$PGPORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$TMPD \
 -c shared_buffers=128MB -c max_connections=100 -c fsync=on -c synchronous_commit=on \
 -c wal_level=replica -c full_page_writes=on -c autovacuum=off -c max_wal_size=1GB -c min_wal_size=80MB ${PGOPTS:-} ${PGSTAT:+-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all}" >/dev/null \
  || { cat $TMPD/pg.log; exit 1; }
PM=$(head -1 $TMPD/data/postmaster.pid)
PSQL="psql -h 127.0.0.1 -p $PGPORT -U postgres -X -q"
$PSQL -d postgres -c "CREATE DATABASE parley" || exit 1
if [ -n "${PGSTAT:-}" ]; then $PSQL -d parley -c "CREATE EXTENSION pg_stat_statements" || exit 1; fi
echo "== private PostgreSQL $($PSQL -d parley -Atc 'show server_version') on 127.0.0.1:$PGPORT, postmaster $PM $(taskset -pc $PM | sed 's/.*: /cpus /');" \
  "$($PSQL -d parley -AtF= -c "SELECT name, setting FROM pg_settings WHERE name IN ('shared_buffers','fsync','synchronous_commit','wal_level','max_connections','autovacuum','full_page_writes') ORDER BY name" | tr '\n' ' ')"
. "$(dirname "$0")/freeport.sh"; PORT=$(free_port 3)
PARLEY_SECRET=$SECRET taskset -c 1 $BIN serve --addr 127.0.0.1:$PORT --data-dir $TMPD/node --log-level warn \
  --store "postgres://postgres@127.0.0.1:$PGPORT/parley?sslmode=disable&application_name=$APP" $SHARDFLAG --broker memory \
  --messages-per-second=-1 --ip-messages-per-second=-1 --typing-per-second=-1 \
  --connects-per-second=-1 --presence-per-second=-1 --reads-per-second=-1 \
  --conversation-writes-per-second=-1 --read-marks-per-second=-1 --deletes-per-second=-1 \
  --uploads-per-second=-1 --conns-per-ip=-1 --pprof-addr 127.0.0.1:$((PORT+1)) ${METRICS:+--metrics-addr 127.0.0.1:$((PORT+2))} > $TMPD/server.log 2>&1 &
SPID=$!
for t in $(seq 150); do curl -sf -m 2 http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
curl -sf -m 2 http://127.0.0.1:$PORT/readyz >/dev/null || { echo "node not ready"; cat $TMPD/server.log; exit 1; }
echo "== node $BIN pid $SPID $(taskset -pc $SPID | sed 's/.*: /cpus /'); tool ${TOOL:-$BIN} on cpu 0; PGCPU=$PGCPU; $ROOMS rooms x window $WINDOW, $DUR"
echo "uptime before: $(uptime)"
PARLEY_SECRET=$SECRET taskset -c 0 ${TOOL:-$BIN} bench write --url http://127.0.0.1:$PORT --server-pid $SPID \
  --rooms $ROOMS --window $WINDOW --duration $DUR > $TMPD/load.out 2>&1 &
LOAD=$!
# cpu PIDS...: the sum of utime + stime (clock ticks) of these processes.
cpu() { local S=0 p; for p in "$@"; do [ -r /proc/$p/stat ] || continue
  # The comm field (2) may hold spaces: read the fields after its ')'.
  local f; f=($(sed 's/^.*) //' /proc/$p/stat)); S=$((S + f[11] + f[12])); done; echo $S; }
backends() { $PSQL -d parley -Atc "SELECT pid FROM pg_stat_activity WHERE application_name = '$APP'"; }
# The instance's CPU: the postmaster's own and its reaped children's (cutime,
# cstime), plus its live children's. A backend that exits during the load is
# counted live at the start and in the postmaster's cutime at the end, so the
# difference holds it too.
instcpu() { local f; f=($(sed 's/^.*) //' /proc/$PM/stat)); echo $((f[11] + f[12] + f[13] + f[14] + $(cpu $(pgrep -P $PM)))); }
until grep -q "connected in" $TMPD/load.out 2>/dev/null; do sleep 0.05; kill -0 $LOAD 2>/dev/null || break; done
# The load tool's CPU (its own, its reaped workers', its live workers'),
# polled every 0.1 s while it runs: the last reading before it exits ends the
# window (it is gone when `wait` returns).
(while [ -r /proc/$LOAD/stat ]; do f=($(sed 's/^.*) //' /proc/$LOAD/stat 2>/dev/null)) || break
  [ ${#f[@]} -gt 14 ] || break
  echo $((f[11] + f[12] + f[13] + f[14] + $(cpu $(pgrep -P $LOAD)))) > $TMPD/toolcpu.new && mv $TMPD/toolcpu.new $TMPD/toolcpu; sleep 0.1; done) &
TOOLP=$!
# busy CPU0 CPU1: each core's busy ticks (all but idle and iowait) from /proc/stat,
# every process on it counted (other users of the machine too).
busy() { awk '$1 == "cpu0" || $1 == "cpu1" {printf "%d ", $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
total() { awk '$1 == "cpu0" {print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9}' /proc/stat; }
sleep 0.15; T0=$(cat $TMPD/toolcpu 2>/dev/null || echo 0)
read -r C00 C10 <<< "$(busy)"; A0=$(total)
BK=$(backends)
B0=$(cpu $BK); I0=$(instcpu); N0=$(cpu $SPID)
# rq PID: the ns its threads waited on a run queue, runnable but not running
# (/proc/PID/task/*/schedstat, second field): the wait for a busy core.
rq() { cat /proc/$1/task/*/schedstat 2>/dev/null | awk '{s += $2} END {printf "%d", s}'; }
declare -A P0 R0; for p in $(pgrep -P $PM); do P0[$p]=$(cpu $p); R0[$p]=$(rq $p); done
NR0=$(rq $SPID)
PROFP=; RECP=; TRACEP=
if [ -n "${PROF:-}" ]; then (sleep 2; curl -s "http://127.0.0.1:$((PORT+1))/debug/pprof/profile?seconds=6" > $PROF) & PROFP=$!; fi
GORP=
if [ -n "${GOROUTINES:-}" ]; then (sleep 5; curl -s "http://127.0.0.1:$((PORT+1))/debug/pprof/goroutine?debug=1" > $GOROUTINES) & GORP=$!; fi
if [ -n "${TRACE:-}" ]; then (sleep 2; curl -s "http://127.0.0.1:$((PORT+1))/debug/pprof/trace?seconds=3" > $TRACE) & TRACEP=$!; fi
if [ -n "${PGREC:-}" ]; then (sleep 2; perf record -F 999 -g -p $(pgrep -d, -P $PM) -o $PGREC -- sleep 5 >/dev/null 2>&1) & RECP=$!; fi
WAITSP=
if [ -n "${PGWAITS:-}" ]; then (sleep 2; echo "SELECT pid, state, coalesce(wait_event_type || ':' || wait_event, 'cpu'), left(regexp_replace(query, '\s+', ' ', 'g'), 24)
  FROM pg_stat_activity WHERE application_name = '$APP' \watch 0.01" | timeout 4 taskset -c 1 $PSQL -d parley -AtF' | ' 2>/dev/null |
  grep ' | ' | sort | uniq -c | sort -k2,2n -k1,1nr > $PGWAITS) & WAITSP=$!; fi
wait $LOAD
[ -n "$WAITSP" ] && wait $WAITSP
[ -n "${METRICS:-}" ] && curl -s http://127.0.0.1:$((PORT+2))/metrics > $METRICS
[ -n "$PROFP" ] && wait $PROFP
[ -n "$RECP" ] && wait $RECP
[ -n "$TRACEP" ] && wait $TRACEP
[ -n "$GORP" ] && wait $GORP
# What each backend of the node ran last (which is the batcher's, which the indexer's).
$PSQL -d parley -AtF' ' -c "SELECT pid, left(regexp_replace(query, '\s+', ' ', 'g'), 70) FROM pg_stat_activity WHERE application_name = '$APP'" | sed 's/^/backend /' 
# The search indexer steps 100 ms after the last commit: count that step.
sleep 0.5
if [ -n "${PGSTAT:-}" ]; then
  $PSQL -d parley -A -F' | ' -c "SELECT calls, rows, round(total_exec_time::numeric, 1) AS exec_ms,
      round((total_exec_time * 1000 / NULLIF((SELECT sum(calls) FILTER (WHERE query ILIKE 'WITH msg AS%') FROM pg_stat_statements), 0))::numeric, 2) AS per_write_call_us,
      shared_blks_hit, shared_blks_read, shared_blks_dirtied, wal_records, wal_bytes, left(regexp_replace(query, '\s+', ' ', 'g'), 110) AS query
    FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 20" > $PGSTAT
fi
# The backends as cluster-write.sh counts them: those of the node's
# application_name at the start, read again (one that exits meanwhile is lost).
B1=$(cpu $BK); I1=$(instcpu); N1=$(cpu $SPID); NR1=$(rq $SPID)
declare -A P1 R1; for p in $(pgrep -P $PM); do P1[$p]=$(cpu $p); R1[$p]=$(rq $p); done
read -r C01 C11 <<< "$(busy)"; A1=$(total)
wait $TOOLP; T1=$(cat $TMPD/toolcpu 2>/dev/null || echo 0)
echo "uptime after: $(uptime)"
cat $TMPD/load.out
ACKS=$(awk '/acks\/s/ {getline; print $3}' $TMPD/load.out)
SENT=$(awk '$1 == "messages" {print $4}' $TMPD/load.out)
HZ=$(getconf CLK_TCK)
per() { awk -v t=$1 -v h=$HZ -v n=${SENT:-0} 'BEGIN {printf "%.2f s", t / h; if (n > 0) printf ", %.1f µs per ack", t / h / n * 1e6}'; }
echo "node CPU during the load (/proc, connected to end + 0.5 s): $(per $((N1 - N0)))"
echo "postgres backends ($(echo $BK | wc -w)) CPU during the load: $(per $((B1 - B0)))"
echo "postgres instance (all its processes) CPU during the load: $(per $((I1 - I0)))"
waitper() { awk -v w=$1 -v n=${SENT:-0} 'BEGIN {printf "%.2f s", w / 1e9; if (n > 0) printf ", %.1f µs per ack", w / 1e3 / n}'; }
echo "node's threads waited for its core (run queue): $(waitper $((NR1 - NR0)))"
for p in "${!P1[@]}"; do d=$(( ${P1[$p]} - ${P0[$p]:-0} )); [ $d -gt 0 ] && printf "  %-8s %-45s CPU %s; waited for the core %s\n" $p "$(tr -d '\0' < /proc/$p/cmdline 2>/dev/null | cut -c1-45)" "$(per $d)" "$(waitper $(( ${R1[$p]} - ${R0[$p]:-0} )))"; done
echo "load tool CPU (its processes, connected to its exit): $(per $((T1 - T0)))"
echo "cores busy during the load (every process on them): cpu0 $(awk -v b=$((C01 - C00)) -v t=$((A1 - A0)) 'BEGIN {printf "%.0f%%", 100 * b / t}'), cpu1 $(awk -v b=$((C11 - C10)) -v t=$((A1 - A0)) 'BEGIN {printf "%.0f%%", 100 * b / t}')"
echo "--- acknowledged writes/s: ${ACKS:-?} (acknowledged: ${SENT:-?}, the per-ack divisor)"
