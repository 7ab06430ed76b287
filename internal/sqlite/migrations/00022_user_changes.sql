-- The log of changed users (parley.UserChangeLog), as PostgreSQL's 00025:
-- every write that renames a user, changes their profile or bans them
-- gives the user the next number of user_change_counter in its own
-- transaction, and each node reads the users whose number is above the
-- last it saw (one range read of users_change_seq). SQLite has one
-- writer, so the numbers commit in order; the counter row keeps the
-- schemes of both engines one. A user keeps only their last number;
-- users changed before this migration have none (NULL).

-- +goose Up
CREATE TABLE user_change_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq INTEGER NOT NULL
) STRICT;
INSERT INTO user_change_counter (one, seq) VALUES (1, 0);
ALTER TABLE users ADD COLUMN change_seq INTEGER;
CREATE UNIQUE INDEX users_change_seq ON users (change_seq) WHERE change_seq IS NOT NULL;

-- +goose Down
DROP INDEX users_change_seq;
ALTER TABLE users DROP COLUMN change_seq;
DROP TABLE user_change_counter;
