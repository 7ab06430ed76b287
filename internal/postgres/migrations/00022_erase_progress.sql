-- Where a user's erasure has got to: as SQLite's 00019 (erase_after is
-- the client_id of the last message an erase call went through).

-- +goose Up
ALTER TABLE user_bans ADD COLUMN erase_after text COLLATE "C" NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE user_bans DROP COLUMN erase_after;
