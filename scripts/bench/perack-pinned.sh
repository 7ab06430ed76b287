#!/bin/bash
# usage: perack-pinned.sh BIN LABEL [bench args...]
# Pinned SQLite `write` (pinned.sh, 12 s, the load tool is $TOOL) with a 6 s
# `perf stat` of the server from 3 s in: CPU (task-clock), context switches
# and syscalls by kind, each per acknowledged message, and Go's mallocs per
# message (acks and mallocs from the server's /metrics over the window).
# XEV: more perf events (e.g. uprobes on runtime.newproc1). State in
# /tmp/perack-LABEL.
BIN=$1; L=$2; shift 2
ST=/tmp/perack-$L; rm -rf $ST; mkdir -p $ST
cd "$(dirname "$0")/../.."
METRICS=1 STATE=$ST TOOL=${TOOL:-$BIN} bash scripts/bench/pinned.sh $BIN - write --duration 12s "$@" > $ST/out 2>&1 &
P=$!
for i in $(seq 100); do [ -s $ST/spid ] && break; sleep 0.1; done
sleep 3
SPID=$(cat $ST/spid); PP=$(cat $ST/pport); PORT=$((PP-1))
acks() { curl -s http://127.0.0.1:$((PP+1))/metrics | awk '/^parley_send_ack_seconds_count{transport="ws"}/{print $2}'; }
ctx() { awk '/ctxt/{s+=$2} END{print s}' /proc/$SPID/status; }
mal() { curl -s http://127.0.0.1:$((PP+1))/metrics | awk '/^go_memstats_mallocs_total/{printf "%d", $2}'; }
M0=$(mal); A0=$(acks); C0=$(grep -h ctxt_switches /proc/$SPID/task/*/status 2>/dev/null | awk '{s+=$2}END{print s}')
perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_pwrite64,syscalls:sys_enter_pread64,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_writev,syscalls:sys_enter_sched_yield,syscalls:sys_enter_tgkill,syscalls:sys_enter_getpid,syscalls:sys_enter_rt_sigreturn${XEV:+,$XEV} -p $SPID -o $ST/perf -- sleep 6
A1=$(acks); M1=$(mal)
wait $P
N=$((A1-A0))
echo "== $L $BIN acks_in_window=$N mallocs/ack $(awk -v a=$((M1-M0)) -v n=$N 'BEGIN{printf "%.1f", a/n}')"
grep -A1 "offered msg/s" $ST/out | tail -1; grep uptime -A0 $ST/out; grep -E "load average" $ST/out | head -1
awk -F, -v n=$N '$1 ~ /^[0-9.]+$/ {printf "  %-40s %12s  per ack %.3f\n", $3, $1, $1/n}' $ST/perf
