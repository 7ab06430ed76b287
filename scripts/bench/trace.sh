#!/bin/bash
# usage: trace.sh BIN TRANSPORT OUT RATE [more fanout args, e.g. --rooms 200]
BIN=$1; TR=$2; OUT=$3; R=$4; shift 4
"$(dirname "$0")/pinned.sh" $BIN $TR fanout --publishers 1 --rates $R --step 12s "$@" 2>&1 | while IFS= read -r line; do
  echo "$line"
  case "$line" in "bench: connected in"*)
    PP=$(cat ${STATE:-/tmp/tb}/pport)
    ( sleep 3
      curl -sS -o $OUT.trace "http://127.0.0.1:$PP/debug/pprof/trace?seconds=4" 2>$OUT.err1
      curl -sS -o $OUT.cpu "http://127.0.0.1:$PP/debug/pprof/profile?seconds=4" 2>$OUT.err2 ) </dev/null & ;;
  esac
done
wait
