-- Mentions and search (issue 14, items 4 and 6).
--
-- messages.mentions: the JSON array of the user ids the text's @names
-- resolved to when it was sent or last edited (NULL: none).
-- mentions: one row per (mentioned user, message), kept by a trigger from
-- messages.mentions, so every write path (bulk sends, edits, deletes)
-- keeps it right: a tombstone has none. It serves a user's list of
-- mentions and the unread mentions of a conversation.
-- messages.search_key: a number that grows with each message inserted,
-- the order of search results (newest first) and their cursor.
-- messages_search: a GIN index of the text's words ('simple'
-- configuration: no stemming, no stop words, lower case), tombstones
-- left out. An edit updates the row, and so the index.

-- +goose Up
ALTER TABLE messages ADD COLUMN mentions text;
ALTER TABLE messages ADD COLUMN search_key bigint GENERATED ALWAYS AS IDENTITY;

CREATE TABLE mentions (
    user_id         text NOT NULL REFERENCES users (id),
    message_id      text NOT NULL REFERENCES messages (id),
    conversation_id text NOT NULL REFERENCES conversations (id),
    seq             bigint NOT NULL,
    created_at      timestamptz NOT NULL,
    PRIMARY KEY (user_id, message_id)
);
CREATE INDEX mentions_by_time ON mentions (user_id, created_at, message_id);
CREATE INDEX mentions_by_conversation ON mentions (user_id, conversation_id, seq);
CREATE INDEX mentions_by_message ON mentions (message_id);

-- +goose StatementBegin
CREATE FUNCTION parley_message_mentions() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM mentions WHERE message_id = NEW.id;
    END IF;
    IF NEW.mentions IS NOT NULL AND NEW.deleted_at IS NULL THEN
        INSERT INTO mentions (user_id, message_id, conversation_id, seq, created_at)
        SELECT u, NEW.id, NEW.conversation_id, NEW.seq, NEW.created_at
        FROM jsonb_array_elements_text(NEW.mentions::jsonb) AS u
        ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER messages_mentions_insert AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.mentions IS NOT NULL) EXECUTE FUNCTION parley_message_mentions();
CREATE TRIGGER messages_mentions_update AFTER UPDATE OF mentions, deleted_at ON messages
    FOR EACH ROW EXECUTE FUNCTION parley_message_mentions();

CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', text)) WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX messages_search;
DROP TRIGGER messages_mentions_update ON messages;
DROP TRIGGER messages_mentions_insert ON messages;
DROP FUNCTION parley_message_mentions();
DROP TABLE mentions;
ALTER TABLE messages DROP COLUMN search_key;
ALTER TABLE messages DROP COLUMN mentions;
