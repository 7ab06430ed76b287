#!/usr/bin/env python3
"""Stretches one goroutine held a P, from `go tool trace -d=parsed` output.

A stretch starts when a goroutine starts running on a P and ends when it blocks, yields, is
preempted, exits, or its P is taken from it during a system call. System calls made while it
keeps the P count in the stretch (nothing else runs on that P meanwhile).
usage: go tool trace -d=parsed T > T.txt; trace-stretches.py T.txt [top N]
"""
import re, sys, collections

ev_re = re.compile(r'^M=(-?\d+) P=(-?\d+) G=(-?\d+) (\w+) Time=(\d+)(.*)$')
tr_re = re.compile(r' (GoID|ProcID)=(\d+) (\w+)->(\w+) Reason="([^"]*)"')
rng_re = re.compile(r' Name="([^"]*)"')

def frames_of(lines, which='TransitionStack='):
    out = []; on = False
    for l in lines:
        if not l.startswith('\t'):
            on = l.strip() == which
            continue
        if on and not l.startswith('\t\t'):
            out.append(l.strip().split(' @ ')[0])
    return out

def short(fr):
    return fr.replace('github.com/parleychat/parley/', '')

label = {}          # goid -> first parley frames seen
cur = {}            # P -> [g, start, sys_total, sys_start]
stretches = []      # (dur, g, start, end, sys, endreason, endstack)
runnable_since = {} # g -> time it became runnable
waits = []          # (wait, g, from, to)
ranges = []         # (name, begin, end)
open_ranges = {}
phase_ev = []       # (time, 'index step' | 'checkpoint'): events with the batcher in them
t0 = None

def set_label(g, frs):
    if g in label and label[g][0]:
        return
    pf = [short(f) for f in frs if 'parleychat/parley' in f]
    if pf:
        label[g] = (True, pf[-1] + ' .. ' + pf[0])
    elif frs and g not in label:
        label[g] = (False, short(frs[-1]))

def end_stretch(p, t, why, stack):
    c = cur.pop(p, None)
    if not c:
        return
    g, s, sysd, sys_s = c
    if sys_s is not None:
        sysd += t - sys_s
    stretches.append((t - s, g, s, t, sysd, why, stack))

def handle(ev, stack_lines):
    global t0
    if ev is None:
        return
    m, p, gctx, kind, t, rest = ev
    t = int(t); p = int(p)
    if t0 is None:
        t0 = t
    frs = frames_of(stack_lines)
    ctxfrs = frames_of(stack_lines, 'Stack=')
    for fr in frs + ctxfrs:
        if 'indexWaiting' in fr or 'indexStep' in fr:
            phase_ev.append((t, 'index step')); break
        if 'checkpointer).run' in fr:
            phase_ev.append((t, 'checkpoint')); break
        if 'batcher).attempt' in fr:
            phase_ev.append((t, 'batch')); break
    if ctxfrs and int(gctx) > 0:
        set_label(int(gctx), ctxfrs)
    if kind == 'RangeBegin':
        n = rng_re.search(rest).group(1)
        open_ranges[(n, gctx if n.startswith('GC mark assist') else '')] = t
        return
    if kind == 'RangeEnd':
        n = rng_re.search(rest).group(1)
        b = open_ranges.pop((n, gctx if n.startswith('GC mark assist') else ''), None)
        if b is not None:
            ranges.append((n, b, t, gctx))
        return
    if kind != 'StateTransition':
        return
    mt = tr_re.search(rest)
    if not mt:
        return
    what, ident, a, b, reason = mt.groups()
    ident = int(ident)
    if what == 'ProcID':
        if b == 'Idle':
            end_stretch(ident, t, 'P idle', [])
        return
    g = ident
    if frs:
        set_label(g, frs)
    if b == 'Runnable':
        runnable_since[g] = t
    if b == 'Running':
        if g in runnable_since:
            w = runnable_since.pop(g)
            waits.append((t - w, g, w, t))
        c = cur.get(p)
        if c and c[0] == g:
            if c[3] is not None:
                c[2] += t - c[3]; c[3] = None
            return
        if c:
            end_stretch(p, t, 'P taken in syscall', [])
        # the goroutine may still be counted on another P
        for q, cc in list(cur.items()):
            if cc[0] == g:
                end_stretch(q, t, 'moved', [])
        cur[p] = [g, t, 0, None]
        return
    if a == 'Running' and b == 'Syscall':
        for q, cc in cur.items():
            if cc[0] == g:
                cc[3] = t
        return
    if a in ('Running', 'Syscall') and b in ('Waiting', 'Runnable', 'NotExist'):
        for q, cc in list(cur.items()):
            if cc[0] == g:
                end_stretch(q, t, a + '->' + b + (' ' + reason if reason else ''), frs)
        return

def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    ev = None; stack = []
    with open(path) as f:
        for line in f:
            if line.startswith('M='):
                handle(ev, stack)
                m = ev_re.match(line.rstrip('\n'))
                ev = m.groups() if m else None
                stack = []
            else:
                stack.append(line)
    handle(ev, stack)
    total = (max(s[3] for s in stretches) - t0) / 1e6
    # histogram
    print(f'trace {total:.0f} ms, {len(stretches)} stretches, busy {sum(s[0] for s in stretches)/1e6:.0f} ms')
    print_hist('stretch', 'ms held in all', [0.1, 0.5, 1, 2, 5, 10, 20, 50], [d / 1e6 for d, *_ in stretches])
    # by goroutine kind, stretches >= 1 ms
    bykind = collections.defaultdict(list)
    for s in stretches:
        bykind[label.get(s[1], (0, '?'))[1]].append(s[0] / 1e6)
    print('\nby goroutine (start..end parley frame), stretches >= 0.5 ms: count, max ms, sum ms')
    rows = []
    for k, v in bykind.items():
        big = [x for x in v if x >= 0.5]
        if big:
            rows.append((max(big), len(big), sum(big), k, len(v), sum(v)))
    for mx, n, sm, k, nall, sall in sorted(rows, reverse=True)[:20]:
        print(f'  {n:5d} max {mx:7.2f} sum {sm:8.1f}  (all {nall} stretches {sall:.0f} ms)  {k}')
    # waits
    ws = sorted(w[0] for w in waits)
    if ws:
        q = lambda x: ws[min(len(ws) - 1, int(x * len(ws)))] / 1e6
        print(f'\nrunnable->running waits: {len(ws)}, p50 {q(.5):.3f} p99 {q(.99):.3f} p99.9 {q(.999):.3f} max {ws[-1]/1e6:.2f} ms')
    # by goroutine: whose waits make the tail (the poller's own wait is before
    # parley_send_wake_seconds starts; the readers' and workers' are in it)
    byg = collections.defaultdict(list)
    for w in waits:
        byg[label.get(w[1], (0, '?'))[1]].append(w[0])
    print('runnable->running waits by goroutine (start..end parley frame), top 10 by count: n, p50/p99/max ms')
    for k, v in sorted(byg.items(), key=lambda kv: -len(kv[1]))[:10]:
        v.sort(); qq = lambda x: v[min(len(v) - 1, int(x * len(v)))] / 1e6
        print(f'  {len(v):6d} {qq(.5):.3f}/{qq(.99):.3f}/{v[-1]/1e6:.2f}  {k}')
    print(f'\ntop {top} stretches:')
    waits.sort(key=lambda w: w[2])
    for d, g, s, e, sysd, why, stk in sorted(stretches, reverse=True)[:top]:
        # who waited: goroutines runnable during the stretch
        waited = [w for w in waits if w[2] < e and w[3] > s]
        gcr = [r[0] for r in ranges if r[1] < e and r[2] > s and 'sweep' not in r[0]]
        print(f'{d/1e6:7.2f} ms at +{(s-t0)/1e6:7.1f} g{g} [{label.get(g,(0,"?"))[1]}] sys {sysd/1e6:.2f} ms; end: {why}; {len(waited)} waited (max {max([w[0] for w in waited], default=0)/1e6:.1f} ms) {sorted(set(gcr))}')
        for fr in stk[:6]:
            print('        ', short(fr))

def print_hist(what, sumcol, edges, values_ms):
    """A markdown table of values_ms by bucket (upper edges in ms): count and sum per bucket."""
    hist = collections.Counter(); held = collections.Counter()
    for ms in values_ms:
        k = next((x for x in edges if ms < x), 'inf')
        hist[k] += 1; held[k] += ms
    print(f'| {what} | count | {sumcol} |')
    print('|---|---|---|')
    lo = 0
    for x in edges + ['inf']:
        print(f'| {lo}-{x} ms | {hist[x]} | {held[x]:.1f} |')
        lo = x

def kind(g):
    l = label.get(g, (0, '?'))[1]
    for key, name in (('batcher', 'batcher'), ('hub', 'hub'), ('New.func8', 'hub'), ('tryWrite', 'hub'),
                      ('goPool', 'readers'), ('poller', 'poller'), ('gcBgMarkWorker', 'GC worker'),
                      ('bgsweep', 'GC sweep'), ('bgscavenge', 'GC scavenge')):
        if key in l:
            return name
    return 'other'

def busy_periods(gap_ns=50000, min_ms=5):
    """Busy periods: runs of stretches on the P with gaps under gap_ns between them. On one P a
    busy period is how long work that became runnable in it can wait; the long ones are the tail."""
    ss = sorted(stretches, key=lambda s: s[2])
    periods = []; cur_p = None
    for s in ss:
        if cur_p and s[2] - cur_p[1] < gap_ns:
            cur_p[1] = max(cur_p[1], s[3]); cur_p[2].append(s)
        else:
            cur_p = [s[2], s[3], [s]]; periods.append(cur_p)
    print(f'\nbusy periods (gaps < {gap_ns/1000:.0f} us): {len(periods)}')
    print_hist('busy period', 'ms in all', [1, 2, 5, 10, 20, 50], [(e - b) / 1e6 for b, e, _ in periods])
    # What a byte arriving at a random time waits for the P: the rest of the busy period it
    # lands in (the runtime polls the network, and the poller runs, only after it on one P;
    # none of it is in parley_send_wake_seconds, which starts when the poller runs).
    # Upper: system calls made holding the P count as busy (a write(2) is CPU; a blocking
    # read is not); lower: the periods shortened by those system calls.
    T = max(e for _, e, _ in periods) - periods[0][0]
    for what, lens in (('system calls busy', [e - b for b, e, _ in periods]),
                       ('system calls free', [max(0, e - b - sum(x[4] for x in st)) for b, e, st in periods])):
        lens.sort(reverse=True)
        def p_wait_over(x):
            return sum(max(0, L - x) for L in lens) / T
        qs = []
        for want in (0.5, 0.9, 0.99, 0.999):
            lo, hi = 0.0, float(lens[0])
            for _ in range(50):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if p_wait_over(mid) > 1 - want else (lo, mid)
            qs.append(f'p{want*100:g} {hi/1e6:.2f}')
        print(f'  a random arrival waits for the rest of its busy period ({what}): P(wait > 0) {p_wait_over(0):.2f}, ' + ', '.join(qs) + ' ms')
    long_ = [p for p in periods if (p[1] - p[0]) / 1e6 >= min_ms]
    # the batcher's index steps and checkpoints: runs of its events in them (gaps < 5 ms, no
    # batch of ops between: how long ops queued meanwhile waited for them)
    phases = []
    for t, what in phase_ev:
        if phases and phases[-1][2] == what and t - phases[-1][1] < 5e6:
            phases[-1][1] = t
        else:
            phases.append([t, t, what])
    marks = [r for r in ranges if r[0] == 'GC concurrent mark phase']
    tot = collections.Counter(); ingc = 0
    print(f'\nbusy periods >= {min_ms} ms: ms by goroutine kind (GC mark phase overlapping?)')
    for b, e, st in sorted(long_, key=lambda p: p[0] - p[1]):
        c = collections.Counter()
        for d, g, s0, e0, sysd, *_ in st:
            c[kind(g)] += d / 1e6
            if sysd: c['(in syscalls)'] += sysd / 1e6
        gc = any(r[1] < e and r[2] > b for r in marks)
        ingc += gc
        for pb, pe, what in phases:
            ov = min(e, pe) - max(b, pb)
            if ov > 0:
                c['[' + what + ']'] += ov / 1e6
        tot.update(c)
        print(f'  {(e-b)/1e6:6.2f} ms at +{(b-t0)/1e6:7.1f}{" GC" if gc else "   "} ' +
              ', '.join(f'{k} {v:.1f}' for k, v in c.most_common()))
    print(f'  all {len(long_)}: {ingc} during a GC mark phase; ' + ', '.join(f'{k} {v:.0f}' for k, v in tot.most_common()))
    print('  GC mark phases: ' + ', '.join(f'+{(r[1]-t0)/1e6:.0f} {(r[2]-r[1])/1e6:.1f} ms' for r in marks))
    print('  index work between two batches: ' + ', '.join(f'+{(p[0]-t0)/1e6:.0f} {(p[1]-p[0])/1e6:.1f} ms' for p in phases if p[2] == 'index step'))
    ck = [(p[1]-p[0])/1e6 for p in phases if p[2] == 'checkpoint']
    print(f'  checkpoints: {len(ck)}, longest {max(ck, default=0):.1f} ms')

main()
busy_periods()
