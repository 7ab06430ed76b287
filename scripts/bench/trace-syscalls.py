#!/usr/bin/env python3
"""System calls in a trace: per call site, how long they took and whether the goroutine kept its P
(nothing else ran on it) or lost it to sysmon. usage: go tool trace -d=parsed T > T.txt; trace-syscalls.py T.txt
"""
import re, sys, collections
ev_re = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) StateTransition Time=(\d+) GoID=(\d+) (\w+)->(\w+)')
open_sc = {}; res = collections.defaultdict(list)
cur = None; stack = []; mode = None
def flush():
    global cur
    if cur is None: return
    t, g, a, b, p = cur
    if a == 'Running' and b == 'Syscall':
        fn = next((s for s in stack if s.startswith('syscall.') or 'Fsync' in s or 'fsync' in s), stack[0] if stack else '?')
        par = next((s for s in stack if 'parley' in s or 'sqlite/lib' in s), '')
        open_sc[g] = (t, fn + ' <- ' + par.replace('github.com/parleychat/parley/', ''), p)
    elif a == 'Syscall' and g in open_sc:
        t0, fn, p0 = open_sc.pop(g)
        res[(fn, 'kept P' if b == 'Running' and p == p0 and p >= 0 else 'lost P')].append((t - t0) / 1e6)
for line in open(sys.argv[1]):
    if line.startswith('M='):
        flush(); cur = None; stack = []; mode = None
        m = ev_re.match(line)
        if m: cur = (int(m.group(4)), int(m.group(5)), m.group(6), m.group(7), int(m.group(2)))
    elif not line.startswith('\t'):
        mode = line.strip()
    elif mode == 'TransitionStack=' and not line.startswith('\t\t'):
        stack.append(line.strip().split(' @ ')[0])
flush()
rows = sorted(res.items(), key=lambda kv: -sum(kv[1]))
for (fn, k), v in rows[:14]:
    v.sort()
    print(f'{len(v):6d} {k:7s} sum {sum(v):7.1f} ms  p50 {v[len(v)//2]:.3f}  p99 {v[int(.99*len(v))]:.2f}  max {v[-1]:.2f}  >1ms {sum(1 for x in v if x>1)}  {fn}')
