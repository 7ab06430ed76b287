#!/usr/bin/env python3
# p50/p99/p99.9 (ms) of the send's wake-up stage (wake), its handling to its ack (ack, ws), the store stages and the delivery lag from a saved /metrics: metrics-quantiles.py FILE [EARLIER] (the difference: the buckets counted between the two)
import sys, re, collections
h = collections.defaultdict(list)
base = {}
if len(sys.argv) > 2:  # q.py END START: the difference
    for l in open(sys.argv[2]):
        m = re.match(r'(\w+_bucket\{[^}]*\}) (\S+)', l)
        if m: base[m.group(1)] = float(m.group(2))
for l in open(sys.argv[1]):
    m = re.match(r'(\w+)_bucket\{(?:(?:stage|transport)="(\w+)",)?le="([^"]+)"\} (\S+)', l)
    if m:
        key = re.match(r'(\w+_bucket\{[^}]*\})', l).group(1)
        h[(m.group(1), m.group(2))].append((float('inf') if m.group(3) == '+Inf' else float(m.group(3)), float(m.group(4)) - base.get(key, 0)))
def q(b, x):
    n = b[-1][1]; t = x * n; lo, c0 = 0, 0
    for le, c in b:
        if c >= t:
            return (lo + (le - lo) * (t - c0) / max(c - c0, 1)) * 1000 if le != float('inf') else lo * 1000
        lo, c0 = le, c
out = []
for k in [('parley_send_wake_seconds', None), ('parley_send_ack_seconds', 'ws')] + [('parley_store_stage_seconds', s) for s in ('queued', 'sql', 'commit', 'sync', 'answer', 'handover')] + [('parley_event_delivery_lag_seconds', None)]:
    if k in h:
        b = sorted(h[k]); out.append(f"{dict(parley_send_wake_seconds='wake', parley_send_ack_seconds='ack').get(k[0]) or k[1] or 'lag'} {q(b,.5):.2f}/{q(b,.99):.1f}/{q(b,.999):.1f}")
print('  '.join(out))
