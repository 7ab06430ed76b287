#!/bin/bash
# usage: fanout-ab.sh OUT ROUNDS BIN... (env RATE, default 1800; TOOL, default the first BIN)
# Same-minute A/B of pinned fan-out: each round runs every BIN once (pinned.sh, rotated order:
# round r starts with BIN r), printing the 1-minute load before and after and the step's table
# row. Saves the server's /metrics at "connected" (OUT-R-NAME.m0) and after the run (OUT-R-NAME.m):
# metrics-quantiles.py OUT-R-NAME.m OUT-R-NAME.m0 gives the store stages over the step only.
OUT=$1; R=$2; shift 2; BINS=("$@"); n=${#BINS[@]}; RATE=${RATE:-1800}
STATE=${STATE:-/tmp/fab}; TOOL=${TOOL:-${BINS[0]}}
cd "$(dirname "$0")/../.."
for r in $(seq $R); do
  for i in $(seq 0 $((n-1))); do
    b=${BINS[$(( (i + r - 1) % n ))]}; tag=$(basename $b)
    echo "== round $r $tag $(date -u +%T) $(uptime | sed 's/.*load/load/')"
    METRICS=$OUT-$r-$tag.m STATE=$STATE TOOL=$TOOL bash scripts/bench/pinned.sh $b - fanout --publishers 1 --rates $RATE --step 10s 2>&1 |
      while IFS= read -r line; do
        case "$line" in "bench: connected in"*)
          curl -s -o $OUT-$r-$tag.m0 http://127.0.0.1:$(( $(cat $STATE/pport) + 1 ))/metrics ;; esac
        case "$line" in *"  $RATE  "*|*lost*) echo "$line" ;; esac
      done
    echo "   end $(uptime | sed 's/.*load/load/')"
  done
done
