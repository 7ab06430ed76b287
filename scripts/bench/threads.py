#!/usr/bin/env python3
"""usage: threads.py PID SECONDS

Counts each thread of PID over SECONDS from /proc/PID/task/*/{stat,status,schedstat}: CPU time
(schedstat's run time), voluntary and involuntary context switches, and timeslices (times the
thread was switched in), per second; prints the 8 busiest threads and the process's total."""
import os, sys, time

pid, dur = sys.argv[1], float(sys.argv[2])


def snap():
    d = {}
    for t in os.listdir(f'/proc/{pid}/task'):
        try:
            s = open(f'/proc/{pid}/task/{t}/status').read()
            vol = int(s.split('\nvoluntary_ctxt_switches:')[1].split()[0])
            nonvol = int(s.split('nonvoluntary_ctxt_switches:')[1].split()[0])
            ss = open(f'/proc/{pid}/task/{t}/schedstat').read().split()
            d[t] = (int(ss[0]), vol, nonvol, int(ss[2]))
        except (OSError, IndexError, ValueError):
            pass  # the thread ended
    return d


a = snap()
time.sleep(dur)
b = snap()
rows = sorted(((b[t][0] - a[t][0], t, [b[t][i] - a[t][i] for i in range(4)]) for t in b if t in a), reverse=True)
tot = [sum(r[2][i] for r in rows) for i in range(4)]
for _, t, x in rows[:8]:
    print(f'tid {t}: cpu {x[0]/1e6/dur:.1f} ms/s, vol {x[1]/dur:.0f}/s, nonvol {x[2]/dur:.0f}/s, timeslices {x[3]/dur:.0f}/s')
print(f'total: cpu {tot[0]/1e6/dur:.1f} ms/s, vol {tot[1]/dur:.0f}/s, nonvol {tot[2]/dur:.0f}/s, '
      f'timeslices {tot[3]/dur:.0f}/s, threads {len(rows)}')
