-- Search by conversation (issue 14): the GIN index also holds a token
-- per message for its conversation ('c' and the md5 of its id in hex, as
-- SQLite's messages_fts conv column: hex digits, which to_tsquery keeps
-- as they are), so a search by a user in up to 64
-- conversations names them in the query ('word' & ('c1' | 'c2' ...)) and
-- the index answers with the matches in those conversations only: the
-- cost follows the user's conversations, not the whole table. (With
-- 00008's index the planner scanned the index once per conversation of
-- the user, or every match of the word.) The expression must be written
-- exactly so in queries (internal/postgres engine.go SearchFrom).
-- A text holding a word equal to a conversation's token (or two ids with
-- one md5) matches no more than the membership join lets it: results are
-- only ever the user's.

-- +goose Up
DROP INDEX messages_search;
CREATE INDEX messages_search ON messages USING GIN (
    (to_tsvector('simple', text) || array_to_tsvector(ARRAY['c' || md5(conversation_id)]))
) WHERE deleted_at IS NULL;

-- +goose Down
DROP INDEX messages_search;
CREATE INDEX messages_search ON messages USING GIN (to_tsvector('simple', text)) WHERE deleted_at IS NULL;
