#!/bin/bash
# usage: pinned.sh BIN TRANSPORT(or -) SCENARIO [bench args...]
# Starts `BIN serve` (TRANSPORT: its --ws-transport, - for its default) on CPU 1 and drives it
# with `$TOOL bench SCENARIO --url ...` (TOOL defaults to BIN) on CPU 0, for A/B runs of two
# binaries with one load tool. Writes the server pid and pprof port to $STATE (default /tmp/tb).
# Server pinned to CPU 1, load tool to CPU 0. Prints uptime before/after.
# METRICS=FILE: also serve --metrics-addr (the port after pprof's) and save the server's /metrics
# in FILE after the run (the store's batch, commit and delivery-lag histograms); METRICS=1 only
# serves it (perack-pinned.sh reads it during the run).
# SERVER_ENV="K=V ...": environment for the server only (e.g. GODEBUG=gctrace=1, which the load
# tool then does not print too); LOG=FILE: keep the server's stderr/stdout in FILE.
set -u
STATE=${STATE:-/tmp/tb}; mkdir -p "$STATE"
BIN=$1; TR=$2; SC=$3; shift 3
D=$(mktemp -d ${STATE}/data.XXXX)
. "$(dirname "$0")/freeport.sh"; PORT=$(free_port 3)
EXTRA=()
if [ "$TR" != "-" ]; then EXTRA=(--ws-transport "$TR"); fi
if [ -n "${METRICS:-}" ]; then EXTRA+=(--metrics-addr 127.0.0.1:$((PORT+2))); fi
env ${SERVER_ENV:-} taskset -c 1 $BIN serve --addr 127.0.0.1:$PORT --data-dir $D --log-level warn \
  --messages-per-second=-1 --ip-messages-per-second=-1 --typing-per-second=-1 \
  --connects-per-second=-1 --presence-per-second=-1 --reads-per-second=-1 \
  --conversation-writes-per-second=-1 --read-marks-per-second=-1 --deletes-per-second=-1 \
  --uploads-per-second=-1 --conns-per-ip=-1 --pprof-addr 127.0.0.1:$((PORT+1)) "${EXTRA[@]}" > $D/server.log 2>&1 &
SPID=$!
for i in $(seq 100); do curl -sf -m 2 http://127.0.0.1:$PORT/readyz >/dev/null && break; sleep 0.2; done
echo "== $BIN $TR $SC $* (server pid $SPID, pprof 127.0.0.1:$((PORT+1)))"; uptime
echo $SPID > ${STATE}/spid; echo $((PORT+1)) > ${STATE}/pport
taskset -c 0 ${TOOL:-$BIN} bench $SC --url http://127.0.0.1:$PORT --data-dir $D --server-pid $SPID "$@"
echo "rc=$?"; uptime
if [ -n "${METRICS:-}" ] && [ "$METRICS" != 1 ]; then curl -sS -o "$METRICS" http://127.0.0.1:$((PORT+2))/metrics; fi
kill $SPID; wait $SPID 2>/dev/null
if [ -n "${LOG:-}" ]; then cp $D/server.log "$LOG"; fi
rm -rf $D
