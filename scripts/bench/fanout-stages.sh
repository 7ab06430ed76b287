#!/bin/bash
# usage: fanout-stages.sh BIN [RATE]   (RATE in messages/s, default 1800 = 18k deliveries/s)
# One pinned fan-out step (pinned.sh, 12 s, the load tool is $TOOL, default BIN) with the
# server's /metrics read twice during the load (2 s after the clients connected, then 9 s
# later), and the store's and the send's stage quantiles over that window only
# (metrics-quantiles.py END START): the connect burst and the groups' creation, which a
# /metrics saved after the run also counts, are left out.
BIN=$1; R=${2:-1800}
cd "$(dirname "$0")/../.."
ST=$(mktemp -d /tmp/stages.XXXX)
METRICS=1 STATE=$ST TOOL=${TOOL:-$BIN} bash scripts/bench/pinned.sh $BIN - fanout --publishers 1 --rates $R --step 12s > $ST/out 2>&1 &
P=$!
for i in $(seq 300); do grep -q "connected in" $ST/out 2>/dev/null && break; sleep 0.1; done
sleep 2; PP=$(cat $ST/pport); curl -s -m 5 http://127.0.0.1:$((PP+1))/metrics > $ST/m0
sleep 9; curl -s -m 5 http://127.0.0.1:$((PP+1))/metrics > $ST/m1
wait $P
grep -E "^== |^ +[0-9]+ " $ST/out
python3 scripts/bench/metrics-quantiles.py $ST/m1 $ST/m0
rm -rf $ST
