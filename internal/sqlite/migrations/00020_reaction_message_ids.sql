-- Reaction events recorded before reactions kept their message in
-- events.message_id get it there.
--
-- The replay's filter (sqlstore.ReplayFilter) leaves out, for a user who
-- blocked a message's sender, the reactions on that message, and finds
-- the message by events.message_id. A reactionAdded or reactionRemoved
-- written before that change has it only in its data (message_id), so a
-- resume still replayed it to the blocker. This copies it from there.
--
-- What it costs: one scan of the events table (no index holds type, and
-- every row must be looked at once), rewriting only the pages that hold
-- a reaction event lacking the column, in one transaction at open,
-- before the store serves; the WAL grows by those pages until the next
-- checkpoint. PostgreSQL's 00023 measured the same scan at about a second
-- per million events; it runs once. A bound (batches, or a range of
-- positions) would not read less: every event before this migration may
-- be an old reaction, and no index finds them by type.

-- +goose Up
UPDATE events SET message_id = json_extract(data, '$.message_id')
    WHERE type IN ('reactionAdded', 'reactionRemoved') AND message_id IS NULL;

-- +goose Down
-- Nothing to undo: the column holds what the data says, which the code
-- of every release reads the same way.
