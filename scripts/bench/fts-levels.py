#!/usr/bin/env python3
# usage: fts-levels.py FILE...
# Prints the levels of a Parley SQLite file's search index (messages_fts): per level its segments,
# how many of them are being merged into the next, and their leaf pages, decoded from FTS5's
# structure record (the block of id 10 in messages_fts_data; fts5_index.c, fts5StructureDecode;
# version 1 records only), and the rows of messages_fts_data. Opens the file read-only.
import sqlite3, sys
def levels(path):
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rec = c.execute("SELECT block FROM messages_fts_data WHERE id = 10").fetchone()[0]
    pages = c.execute("SELECT count(*) FROM messages_fts_data").fetchone()[0]
    i = 4
    def v():
        nonlocal i
        x = 0
        for k in range(9):
            b = rec[i]; i += 1
            if k == 8: return (x << 8) | b
            x = (x << 7) | (b & 0x7f)
            if b < 0x80: break
        return x
    nl = v(); v(); v()
    out = []
    for _ in range(nl):
        m = v(); n = v()
        segs = [(v(), v(), v()) for _ in range(n)]
        out.append((n, m, sum(l - f + 1 for _, f, l in segs)))
    return out, pages
for p in sys.argv[1:]:
    l, pages = levels(p)
    print(p, "levels (segments, merging, leaf pages):", l, "data rows:", pages)
