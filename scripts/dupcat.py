#!/usr/bin/env python3
# usage: duplicates --most 200 --seconds 120 > /tmp/d.txt; python3 scripts/dupcat.py /tmp/d.txt  (in the repo root)
# Puts each pair in a category by where its two sides start: in a Go import block, a SQL migration, test or code.
import re, sys
cats = {}
for line in open(sys.argv[1]):
    m = re.match(r'(D\d+) (\S+):(\d+)-(\d+) ~ (\S+):(\d+)-(\d+)', line)
    if not m: continue
    d, f1, a1, b1, f2, a2, b2 = m.groups()
    def kind(f, a, b):
        if f.endswith('.sql'): return 'sql'
        L = open(f).read().split('\n'); s = e = None
        for i, l in enumerate(L):
            if l.startswith('import ('): s = i + 1
            if s and l == ')' and e is None and i + 1 > s: e = i + 1; break
        if s and int(a) >= s - 1 and int(a) <= e: return 'import'
        return 'test' if f.endswith('_test.go') else 'code'
    k = tuple(sorted((kind(f1, a1, b1), kind(f2, a2, b2))))
    cats.setdefault(k, []).append(d)
for k, v in sorted(cats.items()): print(k, len(v), ' '.join(v))
