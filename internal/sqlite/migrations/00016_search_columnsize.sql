-- The full-text index without its per-message size row (issue 14: the
-- send path did not get worse).
--
-- 00008 made messages_fts contentless with contentless_delete = 1, which
-- keeps a row per indexed message in messages_fts_docsize (its column
-- sizes and origin) so that an entry can be deleted by rowid alone.
-- Writing that row was about a quarter of the index's cost per message
-- (callgrind, docs/benchmarks.md). Parley never ranks by size (results
-- are newest first, highlighted by the server from messages.text), so
-- the index drops it (columnsize = 0) and deletes an entry the classic
-- contentless way: the 'delete' command with the values it was indexed
-- with. Those are the row's old text and conversation: an indexed
-- message (rowid <= search_indexed.upto) is in the index exactly when it
-- is not a tombstone and its text is not empty, with its current text
-- (the indexer indexes the text as it is then, and this trigger follows
-- every change of text or deleted_at after that). Search semantics are
-- unchanged.
--
-- The index is rebuilt here from messages, up to search_indexed.upto
-- (the rest is the indexer's, as before).

-- +goose Up
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, conv, content = '', columnsize = 0, tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO messages_fts (rowid, text, conv)
SELECT rowid, text, 'c' || replace(conversation_id, '-', '') FROM messages
WHERE rowid <= (SELECT upto FROM search_indexed WHERE id = 1) AND deleted_at IS NULL AND text != '';

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages
WHEN old.rowid <= (SELECT upto FROM search_indexed WHERE id = 1) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text, conv)
    SELECT 'delete', old.rowid, old.text, 'c' || replace(old.conversation_id, '-', '') WHERE old.deleted_at IS NULL AND old.text != '';
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, new.text, 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, conv, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO messages_fts (rowid, text, conv)
SELECT rowid, text, 'c' || replace(conversation_id, '-', '') FROM messages
WHERE rowid <= (SELECT upto FROM search_indexed WHERE id = 1) AND deleted_at IS NULL AND text != '';

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages
WHEN old.rowid <= (SELECT upto FROM search_indexed WHERE id = 1) BEGIN
    DELETE FROM messages_fts WHERE rowid = old.rowid;
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, new.text, 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd
