-- Delivery receipts and profiles (issue 15, items 5 and 6).
--
-- delivered_seq: the Seq of the newest message a client of the member
-- received. Like read_seq it is a position that only moves forward; the
-- delivered position clients see is the larger of the two (reading
-- implies delivery).
--
-- display_name and avatar_id: a user's profile. The avatar is one of the
-- user's uploads; while it is someone's avatar the orphan janitor keeps it.

-- +goose Up
ALTER TABLE members ADD COLUMN delivered_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN avatar_id TEXT REFERENCES attachments (id);
CREATE INDEX users_avatar ON users (avatar_id) WHERE avatar_id IS NOT NULL;

-- +goose Down
DROP INDEX users_avatar;
ALTER TABLE users DROP COLUMN avatar_id;
ALTER TABLE users DROP COLUMN display_name;
ALTER TABLE members DROP COLUMN delivered_seq;
