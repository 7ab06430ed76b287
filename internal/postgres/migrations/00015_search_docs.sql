-- The full-text index is written after commit (issue 14: a send's
-- transaction no longer tokenises the text nor updates a GIN index;
-- SQLite did the same in its 00013).
--
-- 00008 indexed to_tsvector('simple', messages.text) with a GIN index on
-- messages, so every INSERT of a send paid for both. Now search_docs holds
-- one row per searchable message (not deleted, text not empty): its
-- words, conversation and search_key, in a narrow table of its own with
-- the GIN index and the orders a search walks. The nodes fill it after
-- commit (internal/postgres/indexer.go): for each shard, the events of
-- messages (newMessage, messageEdited, messageDeleted) above
-- search_cursor.pos are applied in transactions of their own, which move
-- pos in the same transaction. A shard's positions become visible in
-- order (its advisory lock), so what lies above pos is exactly what waits;
-- a node that dies mid-batch rolls back and another goes on from pos.
-- A search matches the messages of the events above pos (the tail) on
-- their text as it is, and search_docs for the rest, in one snapshot:
-- results are immediate and exact, and an edit or delete in the tail
-- hides the message's stale row.
--
-- Rows are written only by the indexer and this migration; a message
-- written without an event (a bulk load) must be added here by hand.

-- +goose Up
-- Keyed by search_key (messages.search_key: growing, so its index is
-- appended to, not written all over as a text key's would be).
CREATE TABLE search_docs (
    search_key      bigint PRIMARY KEY,
    message_id      text NOT NULL,
    conversation_id text NOT NULL,
    words           tsvector NOT NULL
);

-- The cursor first: a message committed while the rows below are copied
-- is above it, and indexing it again is harmless (the indexer upserts).
CREATE TABLE search_cursor (
    shard integer PRIMARY KEY CHECK (shard >= 0),
    pos   bigint NOT NULL
);
INSERT INTO search_cursor (shard, pos) SELECT shard, head FROM positions;
-- Statistics at once: a table never analysed is estimated at thousands
-- of rows, which made a search's plan (a scan of events per cursor)
-- cost enough for JIT compilation, tens of milliseconds of it.
ANALYZE search_cursor;

INSERT INTO search_docs (search_key, message_id, conversation_id, words)
SELECT search_key, id, conversation_id, to_tsvector('simple', text) FROM messages
WHERE deleted_at IS NULL AND text != '';

-- Rare words: the words' matches, then the user's conversations.
CREATE INDEX search_docs_words ON search_docs USING GIN (words);
-- Common words: newest first, in one conversation (this index) or over
-- all of them (the primary key), stopping at a page (the planner picks
-- by the word's frequency).
CREATE INDEX search_docs_conversation ON search_docs (conversation_id, search_key);

DROP INDEX messages_search;

-- +goose Down
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', text)) WHERE deleted_at IS NULL;
DROP TABLE search_cursor;
DROP TABLE search_docs;
