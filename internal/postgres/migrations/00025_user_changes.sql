-- The log of changed users (parley.UserChangeLog), the backstop of the
-- broker's notices of them: a node that died between a profile change's
-- commit and its notice, or a notice NATS dropped, left the other nodes
-- with the old profile cached until they forgot the user. Every write
-- that renames a user, changes their profile or bans them gives the user
-- the next number of user_change_counter in its own transaction, and
-- each node reads the users whose number is above the last it saw, every
-- few seconds (one range read of users_change_seq).
--
-- One counter row, not a sequence: a sequence's numbers commit out of
-- order (a later transaction can commit a higher number while a lower
-- one is still open), and a reader that went on after the higher one
-- would never see the lower. The row's lock is held to the commit, so
-- the numbers commit in order; those writes are rare, and run in the
-- batches that hold every shard's positions lock already.
--
-- A user keeps only their last number (no history to prune). Users
-- changed before this migration have none (NULL: the partial index
-- leaves them out; adding a column without a default rewrites nothing).

-- +goose Up
CREATE TABLE user_change_counter (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint  NOT NULL
);
INSERT INTO user_change_counter (one, seq) VALUES (true, 0);
ALTER TABLE users ADD COLUMN change_seq bigint;
CREATE UNIQUE INDEX users_change_seq ON users (change_seq) WHERE change_seq IS NOT NULL;

-- +goose Down
DROP INDEX users_change_seq;
ALTER TABLE users DROP COLUMN change_seq;
DROP TABLE user_change_counter;
