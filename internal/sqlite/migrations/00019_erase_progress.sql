-- Where a user's erasure has got to (the server API's DELETE
-- /v1/server/users/{id}): the client_id of the last of their messages
-- an erase call went through, '' for none. Each call goes on from it and
-- reads a bounded number of messages, so a user with many messages, most
-- of them tombstoned already, costs each call the same. It lives with
-- the ban, as only a banned user is erased.

-- +goose Up
ALTER TABLE user_bans ADD COLUMN erase_after TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE user_bans DROP COLUMN erase_after;
