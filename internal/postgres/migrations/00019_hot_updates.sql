-- Room on each page for the rows a send updates (issues 12 and 18).
--
-- Every batch of sends updates each conversation it writes to
-- (conversations.last_seq, last_activity_at) and each sender's members row
-- (read_seq, wrote); read receipts update members rows too. None of these
-- columns is indexed, so PostgreSQL can write the new row version on the
-- same page without touching the indexes (a HOT update), but only when the
-- page has room for it. At the default fillfactor (100) the pages are
-- packed full when the rows are inserted, so an update that comes before
-- the page's dead versions are pruned (another transaction's snapshot
-- still sees them: another node's batch, the search indexer's step, a
-- read) moves the row to another page: a lock record and an update record
-- in the WAL, and a new entry in every index of the table (members has
-- three). Under `parley bench write` a quarter to a third of these updates
-- went so (docs/benchmarks.md, "PostgreSQL cost per message (2026-12-06,
-- h-pgwrite)"). Half of each new page is now left free, room for a new
-- version of every row on it: the heap of these two tables takes up to
-- twice the pages, their indexes stop growing with every update.
--
-- The setting applies to pages written from now on; a store's existing
-- pages stay as they are until a rewrite (VACUUM FULL, or pg_repack
-- without the lock) or their rows move.

-- +goose Up
ALTER TABLE conversations SET (fillfactor = 50);
ALTER TABLE members SET (fillfactor = 50);

-- +goose Down
ALTER TABLE members RESET (fillfactor);
ALTER TABLE conversations RESET (fillfactor);
