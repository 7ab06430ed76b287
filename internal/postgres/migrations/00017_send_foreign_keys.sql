-- The foreign keys a send checks go (issue 14, the PostgreSQL send path).
--
-- PostgreSQL checks a foreign key with a query per inserted row (an
-- AFTER trigger running SELECT ... FOR KEY SHARE on the referenced row,
-- which also locks it: the lock is written to the row and to the WAL).
-- A send inserted a message whose conversation and sender, and an event
-- whose actor, conversation and message, were each checked so: under
-- `parley bench write` the foreign-key triggers took about a quarter of
-- the CPU of the node's PostgreSQL backends, and with them dropped a
-- message costs PostgreSQL 44-54 µs instead of 65-75 (docs/benchmarks.md,
-- "PostgreSQL send path (h-pgsend)").
--
-- Nothing they guard can happen in Parley's own writes: nothing deletes
-- users, conversations or messages (a deleted message is a tombstone);
-- a message is inserted only by a send (bulk.go), whose check in the
-- same transaction found the sender a member of the conversation (the
-- members row keeps its foreign keys to both); the event log is
-- append-only, and every event is written in the transaction that read
-- or wrote what it names. The other references (attachments, replies,
-- members, ...) keep theirs. SQLite keeps all of them (foreign_keys is on
-- there), so storetest still checks the shared write code
-- (internal/sqlstore) against them.

-- +goose Up
ALTER TABLE events DROP CONSTRAINT events_actor_id_fkey,
    DROP CONSTRAINT events_conversation_id_fkey,
    DROP CONSTRAINT events_message_id_fkey;
ALTER TABLE messages DROP CONSTRAINT messages_conversation_id_fkey,
    DROP CONSTRAINT messages_sender_id_fkey;

-- +goose Down
ALTER TABLE messages ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    ADD CONSTRAINT messages_sender_id_fkey FOREIGN KEY (sender_id) REFERENCES users (id);
ALTER TABLE events ADD CONSTRAINT events_actor_id_fkey FOREIGN KEY (actor_id) REFERENCES users (id),
    ADD CONSTRAINT events_conversation_id_fkey FOREIGN KEY (conversation_id) REFERENCES conversations (id),
    ADD CONSTRAINT events_message_id_fkey FOREIGN KEY (message_id) REFERENCES messages (id);
