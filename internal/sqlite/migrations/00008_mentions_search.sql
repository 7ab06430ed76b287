-- Mentions and search (issue 14, items 4 and 6).
--
-- messages.mentions: the JSON array of the user ids the text's @names
-- resolved to when it was sent or last edited (NULL: none). Written with
-- the message, read with it (history, events, replays).
-- mentions: one row per (mentioned user, message), kept by triggers from
-- messages.mentions, so every write path (the batcher's multi-row sends,
-- edits, deletes) keeps it right without knowing it: a tombstone has
-- none. It serves a user's list of mentions (newest first, by the
-- message's time) and the unread mentions of a conversation, derived
-- from read_seq as unread_count is.
-- messages_fts: an FTS5 index over messages.text, contentless (the text
-- is stored once, in messages; results are read from there and
-- highlighted by the server), keyed by the messages' rowid and kept by
-- triggers; tombstones and empty texts are not indexed, an edit replaces
-- the old text's entry. conv holds one token per message, 'c' and its
-- conversation id without dashes: a search by a user in few
-- conversations matches only theirs in the index, instead of walking
-- every match. unicode61 without removing diacritics, as PostgreSQL's
-- 'simple' configuration: words are runs of letters and digits, compared
-- without regard to case. A VACUUM may renumber the rowids of messages:
-- after one, rebuild messages_fts (DELETE FROM messages_fts, then the
-- INSERT ... SELECT below).

-- +goose Up
ALTER TABLE messages ADD COLUMN mentions TEXT;

CREATE TABLE mentions (
    user_id         TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT NOT NULL REFERENCES messages (id),
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, message_id)
) STRICT;
CREATE INDEX mentions_by_time ON mentions (user_id, created_at, message_id);
CREATE INDEX mentions_by_conversation ON mentions (user_id, conversation_id, seq);
CREATE INDEX mentions_by_message ON mentions (message_id);

-- +goose StatementBegin
CREATE TRIGGER messages_mentions_insert AFTER INSERT ON messages
WHEN new.mentions IS NOT NULL AND new.deleted_at IS NULL BEGIN
    INSERT OR IGNORE INTO mentions (user_id, message_id, conversation_id, seq, created_at)
    SELECT j.value, new.id, new.conversation_id, new.seq, new.created_at FROM json_each(new.mentions) j;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER messages_mentions_update AFTER UPDATE OF mentions, deleted_at ON messages BEGIN
    DELETE FROM mentions WHERE message_id = new.id;
    INSERT OR IGNORE INTO mentions (user_id, message_id, conversation_id, seq, created_at)
    SELECT j.value, new.id, new.conversation_id, new.seq, new.created_at FROM json_each(new.mentions) j
    WHERE new.deleted_at IS NULL;
END;
-- +goose StatementEnd

CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text, conv, content = '', contentless_delete = 1, tokenize = 'unicode61 remove_diacritics 0'
);
INSERT INTO messages_fts (rowid, text, conv)
SELECT rowid, text, 'c' || replace(conversation_id, '-', '') FROM messages WHERE deleted_at IS NULL AND text != '';

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

-- +goose Down
DROP TRIGGER messages_fts_update;
DROP TRIGGER messages_fts_insert;
DROP TABLE messages_fts;
DROP TRIGGER messages_mentions_update;
DROP TRIGGER messages_mentions_insert;
DROP TABLE mentions;
ALTER TABLE messages DROP COLUMN mentions;
