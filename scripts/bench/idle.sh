#!/bin/bash
# usage: idle.sh BIN TRANSPORT(or -) CONNS
# Reads the pinned server's RSS 3 s into the settle (right after the burst), then forces a GC
# (pprof heap?gc=1) and reads it again 4 s later. With PROFILE=DIR it keeps that heap profile
# (DIR/heap.pb.gz) and the goroutine count. With CPUWIN=S (and SETTLE past 8+S s) it then reads
# the server's CPU time (utime+stime) over S seconds of idle clients pinging (the read path).
BIN=$1; TR=$2; N=$3
"$(dirname "$0")/pinned.sh" $BIN $TR idle --conns $N --settle ${SETTLE:-12s} 2>&1 | while IFS= read -r line; do
  echo "$line"
  case "$line" in *settling*)
    ( SPID=$(cat ${STATE:-/tmp/tb}/spid); PP=$(cat ${STATE:-/tmp/tb}/pport)
      sleep 3; echo "RSS burst+3s: $(grep VmRSS /proc/$SPID/status)"
      if [ -n "${PROFILE:-}" ]; then mkdir -p "$PROFILE"; OUT=$PROFILE/heap.pb.gz; else OUT=/dev/null; fi
      curl -s "http://127.0.0.1:$PP/debug/pprof/heap?gc=1" > $OUT
      echo "goroutines: $(curl -s "http://127.0.0.1:$PP/debug/pprof/goroutine?debug=1" | head -1)"
      sleep 4; echo "RSS after GC+4s: $(grep VmRSS /proc/$SPID/status)"
      curl -s "http://127.0.0.1:$PP/debug/pprof/heap?debug=1" | grep -E "^# (HeapAlloc|HeapSys|HeapIdle|HeapInuse|HeapReleased|Stack|MSpanInuse|NumGC|Sys) "
      grep -E "Threads" /proc/$SPID/status
      if [ -n "${CPUWIN:-}" ]; then
        sleep 1; T0=$(awk '{print $14+$15}' /proc/$SPID/stat); sleep $CPUWIN; T1=$(awk '{print $14+$15}' /proc/$SPID/stat)
        echo "server CPU over ${CPUWIN}s idle: $(( (T1-T0)*10 )) ms ($(getconf CLK_TCK) ticks/s)"
      fi ) & ;;
  esac
done
wait
