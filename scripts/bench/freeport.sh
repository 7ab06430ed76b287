# Sourced by the bench scripts. free_port N: prints a port P in 20000-29999
# such that nothing listens on P .. P+N-1 on this machine (a server's
# --addr, --pprof-addr and --metrics-addr take consecutive ports). A port
# drawn at random without the check once landed on another program's
# listener (2026-12-06 14:21, a beam.smp): the script's readiness curl then
# talked to it and waited for an answer that never came.
free_port() {
  local n=${1:-1} p i busy
  while :; do
    p=$((20000 + RANDOM % 10000)); busy=
    for i in $(seq 0 $((n-1))); do
      ss -Hltn "sport = :$((p+i))" | grep -q . && { busy=1; break; }
    done
    [ -z "$busy" ] && { echo $p; return; }
  done
}
