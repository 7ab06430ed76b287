-- The full-text index holds the words Go split (parley.SearchIndexText),
-- not what FTS5's unicode61 tokenizer finds in the text.
--
-- The query was cut into words by Go (parley.SearchTerms) and the text by
-- unicode61, whose Unicode tables are 6.1: characters newer than that
-- (some emoji, 🏳, the skin tones) were letters to it, so word🏳 and
-- 👍🏽word held no "word" (docs/protocol.md, "search"). Now one rule in
-- Go decides both: the index gets parley_search_text(text), the keys of
-- the text's words (lower-cased, NFC, cut to 64 bytes) joined by single
-- spaces, through FTS5's ascii tokenizer, which splits only at ASCII
-- characters that are not letters or digits (a key holds none: they are
-- separators to the rule too) and folds only ASCII case (a key is lower
-- case already): it gives back exactly the keys, whatever the Unicode
-- version. parley_search_text is a Go function the store registers on
-- every connection (internal/sqlite/searchwords.go): the trigger below
-- calls it, so an edit or delete through another program (the sqlite3
-- shell) fails with "no such function" rather than leave the index
-- wrong.
--
-- The index is rebuilt here, up to search_indexed.upto, as 00016 did;
-- columnsize = 0 and automerge = 0 (00016, 00018) as before. The trigger
-- deletes an entry with parley_search_text(old.text): the values it was
-- indexed with, as long as the rule is the same. A release that changes
-- the rule (a newer Go's Unicode tables count as letters characters
-- unassigned before) must rebuild the index in a migration, as this one.

-- +goose Up
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, conv, content = '', columnsize = 0, tokenize = 'ascii'
);
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 0);
INSERT INTO messages_fts (rowid, text, conv)
SELECT rowid, parley_search_text(text), 'c' || replace(conversation_id, '-', '') FROM messages
WHERE rowid <= (SELECT upto FROM search_indexed WHERE id = 1) AND deleted_at IS NULL AND text != '';

-- +goose StatementBegin
CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, deleted_at ON messages
WHEN old.rowid <= (SELECT upto FROM search_indexed WHERE id = 1) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text, conv)
    SELECT 'delete', old.rowid, parley_search_text(old.text), 'c' || replace(old.conversation_id, '-', '') WHERE old.deleted_at IS NULL AND old.text != '';
    INSERT INTO messages_fts (rowid, text, conv)
    SELECT new.rowid, parley_search_text(new.text), 'c' || replace(new.conversation_id, '-', '') WHERE new.deleted_at IS NULL AND new.text != '';
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER messages_fts_update;
DROP TABLE messages_fts;
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, conv, content = '', columnsize = 0, tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 0);
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
