-- name_key is parley.NameKey(name): the confusables skeleton (Unicode TR39)
-- of the name's PRECIS comparison form. Unique, so look-alike names
-- ("admin", "аdmin" with a Cyrillic а, "admın" with a dotless ı) cannot
-- belong to two users. SQL cannot compute it: the store fills it at open
-- for rows that have none (oldest first); a row whose key an older row
-- already holds keeps NULL (NULLs never collide), so users who already
-- had look-alike names before this migration keep their accounts.

-- +goose Up
ALTER TABLE users ADD COLUMN name_key text;
CREATE UNIQUE INDEX users_name_key ON users (name_key);

-- +goose Down
DROP INDEX users_name_key;
ALTER TABLE users DROP COLUMN name_key;
