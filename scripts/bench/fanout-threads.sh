#!/bin/bash
# usage: fanout-threads.sh LABEL BIN [RATE]
# One pinned fan-out step (scripts/bench/pinned.sh: server on CPU 1, load tool on CPU 0) of
# RATE msg/s (default 1800: 18k deliveries/s) for 20 s, and, 12 s after the server started,
# its threads counted for 5 s by threads.py (CPU, voluntary and involuntary switches,
# timeslices: the switches to each thread). SLACK=NS: first write NS to every server thread's
# /proc/TID/timerslack_ns (root), to try a timer slack from outside. TOOL: the load tool
# (default BIN). Lines are prefixed with LABEL. Wrap in `flock /tmp/bench.lock` on a shared box.
set -u
LABEL=$1; BIN=$2; RATE=${3:-1800}
ST=$(mktemp -d /tmp/fanout-threads.XXXX)
cd "$(dirname "$0")/../.."
( STATE=$ST bash scripts/bench/pinned.sh $BIN - fanout --publishers 1 --rates $RATE --step 20s 2>&1 | sed "s/^/$LABEL /" ) &
for i in $(seq 100); do [ -s $ST/spid ] && break; sleep 0.2; done
P=$(cat $ST/spid)
if [ -n "${SLACK:-}" ]; then for t in /proc/$P/task/*; do echo $SLACK > /proc/$(basename $t)/timerslack_ns; done; fi
sleep 12
python3 scripts/bench/threads.py $P 5 | sed "s/^/$LABEL threads: /"
echo "$LABEL slack: $(for t in /proc/$P/task/*; do cat /proc/$(basename $t)/timerslack_ns 2>/dev/null; done | sort | uniq -c | tr -s ' \n' ' ')"
wait
rm -rf $ST
