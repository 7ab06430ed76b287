-- The full-text index merges its segments in the indexer's bounded
-- steps, not inside the statement that flushes one (issue 12).
--
-- FTS5 writes a segment (a b-tree) each time it flushes its pending rows:
-- at each statement of an index step (its savepoint) and at each commit.
-- With 'automerge' (default 4) the flush then merges segments in the same
-- call, up to 64 pages per level per 64 pages flushed: with one P
-- (GOMAXPROCS=1) that call kept every other goroutine off the CPU for up
-- to 16 ms (BenchmarkIndexStepHold, docs/benchmarks.md "FTS5 merges in
-- bounded steps"). automerge = 0 leaves merging to the indexer
-- (internal/sqlite/indexer.go), which runs FTS5's 'merge' command a few
-- pages at a time, with the batcher's yields between, until no level
-- holds 'usermerge' (default 4) segments: the same merge tree automerge
-- built. 'crisismerge' (default 16) stays as it is: a level that reaches
-- it (the indexer fell behind) is still merged inside the flush.
--
-- Only the index's configuration changes (a row of messages_fts_config):
-- nothing is rewritten, the first start after it is as fast as any.
-- Search results are the same: merging changes the index's layout, not
-- what it holds.

-- +goose Up
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 0);

-- +goose Down
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 4);
