-- Less for PostgreSQL to do per message sent (issue 12).
--
-- messages_reply_to_id_fkey goes. PostgreSQL queues a foreign-key check
-- for every row inserted, NULL or not (it skips the queue only for
-- updates that keep the key), and runs it at the statement's end: it
-- fetches the row again and, for a value, locks the referenced row FOR
-- KEY SHARE. Every message paid for it, replies or not (a psql insert of
-- 100,000 messages: 9.3 µs a row without it, 9.9 with it;
-- docs/benchmarks.md, "PostgreSQL acknowledged writes, one node: what a
-- send writes"). What it guards cannot happen in Parley's writes: a reply
-- is inserted only by a send (bulk.go), which read its parent in the same
-- transaction (sqlstore.ReplyRule: a parent of another conversation, or
-- none, is refused), and nothing deletes a message (a deleted message is
-- a tombstone). SQLite's migration 00017 dropped the same key (and its
-- store's other keys on messages and events) for the same reasons;
-- storetest checks that a reply to a missing message is refused.
-- messages_attachment_id_fkey stays: the orphan sweep deletes
-- attachments that no message holds, and the key's lock on the
-- attachment is what stops it from deleting one that a send in flight is
-- about to hold.
--
-- events_message_changes: the search indexer's step (indexer.go) reads
-- the edits and deletes among the events it applies (qUnindex) before it
-- reads all of them (qIndex). Without an index of their own, that first
-- read walked every event of the step in events_pkey and fetched each
-- row to test its type: the step read each event twice. Edits and
-- deletes are few; a newMessage event adds nothing to this partial index
-- (its predicate is false), so the sends pay only the predicate's test.
-- Building it reads the whole event log and holds off writes to events
-- meanwhile: on a large store, run it at a quiet time.

-- +goose Up
ALTER TABLE messages DROP CONSTRAINT messages_reply_to_id_fkey;
CREATE INDEX events_message_changes ON events (shard, pos) WHERE type IN ('messageEdited', 'messageDeleted');

-- +goose Down
DROP INDEX events_message_changes;
ALTER TABLE messages ADD CONSTRAINT messages_reply_to_id_fkey FOREIGN KEY (reply_to_id) REFERENCES messages (id);
