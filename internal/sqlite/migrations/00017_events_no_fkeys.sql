-- The event log without foreign keys (issue 12: SQLite CPU per stored
-- message).
--
-- events.conversation_id, actor_id and message_id referred to
-- conversations, users and messages. Every event is written by the
-- batcher in the transaction of the op it records, about rows that op
-- read or wrote in that same transaction (a send's message row, written
-- by the same flush; the conversation and the member it checked), and
-- Parley never deletes a conversation, a user or a message (a deleted
-- message is a tombstone), so the keys could never fail. They still cost
-- every stored message three B-tree seeks (one per parent, with a cursor
-- opened and closed for each) out of ten, and, being immediate keys on a
-- multi-row INSERT, a statement journal of every page the events' insert
-- touched (SQLite must be able to undo that statement alone when a key
-- fails at its end; with the keys gone, INSERT OR ROLLBACK can fail only
-- by rolling back the whole transaction). docs/benchmarks.md (h-sqlrow).
--
-- SQLite cannot drop a constraint in place: the table is rebuilt as
-- 00012 did, rows and ids (the rowids) kept, with the same indexes.
-- events is no table's parent, so dropping it needs no key off.
-- PostgreSQL keeps its keys (its writes are not SQLite's).

-- +goose Up
CREATE TABLE events_new (
    id              INTEGER PRIMARY KEY,
    shard           INTEGER NOT NULL DEFAULT 0,
    pos             INTEGER NOT NULL,
    conversation_id TEXT,
    type            TEXT NOT NULL,
    actor_id        TEXT NOT NULL,
    message_id      TEXT,
    data            TEXT NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL,
    recipient       TEXT,
    UNIQUE (shard, pos)
) STRICT;
INSERT INTO events_new (id, shard, pos, conversation_id, type, actor_id, message_id, data, at, recipient)
    SELECT id, shard, pos, conversation_id, type, actor_id, message_id, data, at, recipient FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_conversation ON events (conversation_id, pos);
CREATE INDEX events_of_user ON events (recipient, pos) WHERE conversation_id IS NULL;

-- +goose Down
CREATE TABLE events_old (
    id              INTEGER PRIMARY KEY,
    shard           INTEGER NOT NULL DEFAULT 0,
    pos             INTEGER NOT NULL,
    conversation_id TEXT REFERENCES conversations (id),
    type            TEXT NOT NULL,
    actor_id        TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT REFERENCES messages (id),
    data            TEXT NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL,
    recipient       TEXT,
    UNIQUE (shard, pos)
) STRICT;
INSERT INTO events_old (id, shard, pos, conversation_id, type, actor_id, message_id, data, at, recipient)
    SELECT id, shard, pos, conversation_id, type, actor_id, message_id, data, at, recipient FROM events;
DROP TABLE events;
ALTER TABLE events_old RENAME TO events;
CREATE INDEX events_by_conversation ON events (conversation_id, pos);
CREATE INDEX events_of_user ON events (recipient, pos) WHERE conversation_id IS NULL;
