#!/bin/bash
# usage: perdelivery-pinned.sh BIN LABEL RATE [STEP]: pinned fanout (pinned.sh, one --rates step, the
# load tool is $TOOL, default /tmp/lead-base); perf stat of the server (CPU, context switches, syscalls
# by kind; XEV: more events, e.g. a uprobe on runtime.newproc1) and its /metrics over 6 s
# from 2 s after the first stored message, each per delivery (parley_events_fanned_out_total), with
# mallocs, bytes and GCs per delivery. PROF=1: a 6 s CPU profile instead (PROF=allocs, PROF=heap: those
# profiles). State in /tmp/perdelivery-LABEL.
BIN=$1; L=$2; R=$3; STEP=${4:-12s}
ST=/tmp/perdelivery-$L; rm -rf $ST; mkdir -p $ST
cd "$(dirname "$0")/../.."
METRICS=1 STATE=$ST TOOL=${TOOL:-/tmp/lead-base} bash scripts/bench/pinned.sh $BIN - fanout --publishers 1 --rates $R --step $STEP > $ST/out 2>&1 &
P=$!
for i in $(seq 300); do [ -s $ST/pport ] && break; sleep 0.1; done
SPID=$(cat $ST/spid); PP=$(cat $ST/pport); MP=$((PP+1))
m() { curl -s http://127.0.0.1:$MP/metrics > $1; }
g() { awk -v k="$1" '$1==k{printf "%.0f", $2}' $2; }
for i in $(seq 600); do m $ST/m0; v=$(g parley_messages_total $ST/m0); [ -n "$v" ] && [ "$v" -gt 0 ] && break; sleep 0.1; done
sleep 2
m $ST/m0
if [ -n "${PROF:-}" ]; then
  curl -s -o $ST/cpu.pprof "http://127.0.0.1:$PP/debug/pprof/${PROF/1/profile}?seconds=6"
else
perf stat -x, -e task-clock,context-switches,raw_syscalls:sys_enter,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_read,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,syscalls:sys_enter_pwrite64,syscalls:sys_enter_pread64,syscalls:sys_enter_fdatasync,syscalls:sys_enter_fsync,syscalls:sys_enter_io_submit,syscalls:sys_enter_io_getevents,syscalls:sys_enter_sched_yield,syscalls:sys_enter_tgkill,syscalls:sys_enter_getpid,syscalls:sys_enter_rt_sigreturn,syscalls:sys_enter_madvise,syscalls:sys_enter_mmap,syscalls:sys_enter_fcntl${XEV:+,$XEV} -p $SPID -o $ST/perf -- sleep 6
fi
m $ST/m1
wait $P
N=$(( $(g parley_events_fanned_out_total $ST/m1) - $(g parley_events_fanned_out_total $ST/m0) ))
d() { echo $(( $(g $1 $ST/m1) - $(g $1 $ST/m0) )); }
echo "== $L $BIN rate=$R deliveries_in_window=$N"
grep -E "load average" $ST/out | head -1
grep -A3 "offered" $ST/out | head -4
awk -v n=$N -v ma=$(d go_memstats_mallocs_total) -v by=$(d go_memstats_alloc_bytes_total) -v gc=$(d go_gc_duration_seconds_count) 'BEGIN{printf "  mallocs/del %.2f  bytes/del %.0f  GCs %d (per 1k del %.3f)\n", ma/n, by/n, gc, gc*1000/n}'
[ -f $ST/perf ] && awk -F, -v n=$N '$1 ~ /^[0-9.]+$/ && $1>0 {printf "  %-36s %12s  per del %.4f\n", $3, $1, $1/n}' $ST/perf
true
