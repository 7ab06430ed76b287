-- messages and events without foreign keys (issue 12: SQLite CPU per
-- stored message).
--
-- messages.conversation_id, sender_id, attachment_id and reply_to_id, and
-- events.conversation_id, actor_id and message_id referred to
-- conversations, users, attachments and messages. SQLite writes message
-- rows only in the batcher's send (internal/sqlite/send.go), which checks
-- each of them in the same transaction first (the sender's membership,
-- whose members row has its keys; the attachment, owned by the sender;
-- the replied-to message, in the conversation), and events only in the
-- transaction of the op they record, about rows that op read or wrote.
-- Parley never deletes a conversation, a user or a message (a deleted
-- message is a tombstone), and deletes an attachment only when no
-- message holds it (qDeleteOrphans, run by the same single writer). So
-- these keys could not fail; what they cost every stored message was
-- five B-tree seeks of ten (one per parent not NULL, each with a cursor
-- opened and closed) and, being immediate keys on multi-row INSERTs, a
-- statement journal of every page the batch's two inserts touched:
-- SQLite must be able to undo such a statement alone when a key fails at
-- its end, whatever OR ROLLBACK says. Without them the batch's INSERT OR
-- ROLLBACK can fail only by rolling back the whole transaction, and
-- keeps no journal. docs/benchmarks.md (h-sqlrow).
--
-- The keys that refer to messages (reactions, mentions, message_edits)
-- and every other table's stay. PostgreSQL keeps its keys.
--
-- SQLite cannot drop a constraint in place: both tables are rebuilt as
-- 00012 rebuilt events, every row and rowid kept (the search index and
-- search_indexed.upto refer to messages' rowids), with the same
-- columns, unique keys, indexes and triggers.

-- +goose NO TRANSACTION

-- +goose Up
-- Keys off for the rebuild (messages is the parent of reactions, mentions,
-- message_edits and of itself): with them on, DROP TABLE messages would
-- first delete every row, checking each against its children (a scan of
-- message_edits and of messages' reply_to_id, which have no index, for
-- every row). The pragma works only outside a transaction, hence NO
-- TRANSACTION and the explicit one.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
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

CREATE TABLE messages_new (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    seq             INTEGER NOT NULL,
    sender_id       TEXT NOT NULL,
    client_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    text            TEXT NOT NULL DEFAULT '',
    attachment_id   TEXT,
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    edited_at       INTEGER,
    reply_to_id     TEXT,
    mentions        TEXT,
    UNIQUE (conversation_id, seq),
    -- The idempotency key of SendMessage.
    UNIQUE (sender_id, client_id)
) STRICT;
-- The rowids too: the search index and search_indexed.upto refer to them.
INSERT INTO messages_new (rowid, id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, deleted_at, edited_at, reply_to_id, mentions)
    SELECT rowid, id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, deleted_at, edited_at, reply_to_id, mentions FROM messages;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
CREATE INDEX messages_attachment ON messages (attachment_id) WHERE attachment_id IS NOT NULL;
-- The triggers went with the table: 00008's and 00016's, as they were.
-- +goose StatementBegin
CREATE TRIGGER messages_mentions_update AFTER UPDATE OF mentions, deleted_at ON messages BEGIN
    DELETE FROM mentions WHERE message_id = new.id;
    INSERT OR IGNORE INTO mentions (user_id, message_id, conversation_id, seq, created_at)
    SELECT j.value, new.id, new.conversation_id, new.seq, new.created_at FROM json_each(new.mentions) j
    WHERE new.deleted_at IS NULL;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages
WHEN old.rowid <= (SELECT upto FROM search_indexed WHERE id = 1) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text, conv)
    SELECT 'delete', old.rowid, old.text, 'c' || replace(old.conversation_id, '-', '') WHERE old.deleted_at IS NULL AND old.text != '';
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, new.text, 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd
COMMIT;
PRAGMA foreign_keys = ON;

-- +goose Down
-- Keys off for the rebuild (messages is the parent of reactions, mentions,
-- message_edits and of itself): with them on, DROP TABLE messages would
-- first delete every row, checking each against its children (a scan of
-- message_edits and of messages' reply_to_id, which have no index, for
-- every row). The pragma works only outside a transaction, hence NO
-- TRANSACTION and the explicit one.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
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

CREATE TABLE messages_old (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    sender_id       TEXT NOT NULL REFERENCES users (id),
    client_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    text            TEXT NOT NULL DEFAULT '',
    attachment_id   TEXT REFERENCES attachments (id),
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    edited_at       INTEGER,
    reply_to_id     TEXT REFERENCES messages (id),
    mentions        TEXT,
    UNIQUE (conversation_id, seq),
    -- The idempotency key of SendMessage.
    UNIQUE (sender_id, client_id)
) STRICT;
-- The rowids too: the search index and search_indexed.upto refer to them.
INSERT INTO messages_old (rowid, id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, deleted_at, edited_at, reply_to_id, mentions)
    SELECT rowid, id, conversation_id, seq, sender_id, client_id, type, text, attachment_id, created_at, deleted_at, edited_at, reply_to_id, mentions FROM messages;
DROP TABLE messages;
ALTER TABLE messages_old RENAME TO messages;
CREATE INDEX messages_attachment ON messages (attachment_id) WHERE attachment_id IS NOT NULL;
-- The triggers went with the table: 00008's and 00016's, as they were.
-- +goose StatementBegin
CREATE TRIGGER messages_mentions_update AFTER UPDATE OF mentions, deleted_at ON messages BEGIN
    DELETE FROM mentions WHERE message_id = new.id;
    INSERT OR IGNORE INTO mentions (user_id, message_id, conversation_id, seq, created_at)
    SELECT j.value, new.id, new.conversation_id, new.seq, new.created_at FROM json_each(new.mentions) j
    WHERE new.deleted_at IS NULL;
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages
WHEN old.rowid <= (SELECT upto FROM search_indexed WHERE id = 1) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text, conv)
    SELECT 'delete', old.rowid, old.text, 'c' || replace(old.conversation_id, '-', '') WHERE old.deleted_at IS NULL AND old.text != '';
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, new.text, 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd
COMMIT;
PRAGMA foreign_keys = ON;
