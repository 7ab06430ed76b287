-- Reaction events recorded before reactions kept their message in
-- events.message_id get it there: as SQLite's 00020.
--
-- The replay's filter (sqlstore.ReplayFilter) leaves out, for a user who
-- blocked a message's sender, the reactions on that message, and finds
-- the message by events.message_id. A reactionAdded or reactionRemoved
-- written before that change has it only in its data (message_id), so a
-- resume still replayed it to the blocker. This copies it from there.
--
-- What it costs: one sequential scan of events (no index holds type, and
-- every row must be looked at once), writing only the reaction events
-- that lack the column: each gets a new row version (and, where its page
-- is full, new index entries), the old ones left to autovacuum. Measured
-- here: 1.1 s for 1,000,000 events of which 50,000 reactions, the table
-- in memory (192 MB); so some minutes per hundred million events, plus
-- reading the table from disk when it is not cached. It runs once, under
-- goose's lock, before the first node of this release serves; it locks
-- only the rows it changes, so other nodes go on writing meanwhile (a
-- node of a release older than message_id on reactions, in a rolling
-- upgrade, may still write a few reactions without it: those stay as
-- they were). A bound (batches, or a range of positions)
-- would not read less: every event before this migration may be an old
-- reaction, and events hold no index on type to find them by.

-- +goose Up
UPDATE events SET message_id = data->>'message_id'
    WHERE type IN ('reactionAdded', 'reactionRemoved') AND message_id IS NULL;

-- +goose Down
-- Nothing to undo: the column holds what the data says, which the code
-- of every release reads the same way.
