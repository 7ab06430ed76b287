-- The full-text index is written after commit, and the mentions rows
-- by the send path (issue 14: the send path no longer pays for them
-- inside the write transaction).
--
-- 00008's triggers indexed every message in the transaction that stored
-- it. Now the batcher indexes the messages whose rowid is above
-- search_indexed.upto in transactions of their own, hundreds of rows at
-- a time, and moves upto in the same transaction, so a crash loses no
-- row and indexes none twice: the next start goes on from upto (see
-- internal/sqlite/indexer.go). A search first has the batcher index what
-- waits, so a message is searchable once its send returned.
--
-- Edits and deletes of an indexed message (rowid <= upto) still change
-- the index in their own transaction, so a search never matches a
-- tombstone or the text before an edit; a message not indexed yet is
-- indexed with its text as it is then.
--
-- A VACUUM may renumber the rowids of messages: after one, rebuild the
-- index (DELETE FROM messages_fts; UPDATE search_indexed SET upto = 0).

-- +goose Up
CREATE TABLE search_indexed (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    upto INTEGER NOT NULL
) STRICT;
-- Every message is in the index (00008's triggers) up to now.
INSERT INTO search_indexed (id, upto) SELECT 1, COALESCE(MAX(rowid), 0) FROM messages;

DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_update;
-- The send path writes a new message's mentions rows itself
-- (internal/sqlite/mentions.go), only for a message that has any: the
-- trigger cost every insert a trigger program.
DROP TRIGGER messages_mentions_insert;

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages
WHEN old.rowid <= (SELECT upto FROM search_indexed WHERE id = 1) BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, new.text, 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE TRIGGER messages_mentions_insert AFTER INSERT ON messages
WHEN new.mentions IS NOT NULL AND new.deleted_at IS NULL BEGIN
    INSERT OR IGNORE INTO mentions (user_id, message_id, conversation_id, seq, created_at)
    SELECT j.value, new.id, new.conversation_id, new.seq, new.created_at FROM json_each(new.mentions) j;
END;
-- +goose StatementEnd

DROP TRIGGER messages_fts_update;
-- Index what waits, then restore 00008's triggers.
INSERT INTO messages_fts (rowid, text, conv)
SELECT rowid, text, 'c' || replace(conversation_id, '-', '') FROM messages
WHERE rowid > (SELECT upto FROM search_indexed WHERE id = 1) AND deleted_at IS NULL AND text != '';
DROP TABLE search_indexed;

-- +goose StatementBegin
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.deleted_at IS NULL AND new.text != '' BEGIN
    INSERT INTO messages_fts (rowid, text, conv) VALUES (new.rowid, new.text, 'c' || replace(new.conversation_id, '-', ''));
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, new.text, 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd
