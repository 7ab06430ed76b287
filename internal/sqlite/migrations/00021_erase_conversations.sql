-- Where an erasure's walk of the user's conversation list has got to
-- (the server API's DELETE /v1/server/users/{id}, once their messages are
-- done): the server's cursor of that list, '' when no walk is under way.
-- Each call goes on from it and reads a bounded number of pages, so a
-- user with thousands of conversations costs each call the same. It lives
-- with the ban, as only a banned user is erased; nodes of the previous
-- release ignore it (they walk the whole list in each call).

-- +goose Up
ALTER TABLE user_bans ADD COLUMN erase_conversations TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE user_bans DROP COLUMN erase_conversations;
