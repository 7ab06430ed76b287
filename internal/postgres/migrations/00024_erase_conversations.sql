-- Where an erasure's walk of the user's conversation list has got to: as
-- SQLite's 00021 (the server's cursor of that list, '' when no walk is
-- under way). Adding a column with a constant default rewrites nothing.

-- +goose Up
ALTER TABLE user_bans ADD COLUMN erase_conversations text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE user_bans DROP COLUMN erase_conversations;
