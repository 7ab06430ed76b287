-- Presence privacy: a direct conversation makes its two users contacts
-- (they see each other's presence) only once both have written in it, so
-- a stranger who opens one learns nothing. members.wrote records that a
-- member has sent a message in the conversation; a send sets it in the
-- same statement that moves the sender's read position.

-- +goose Up
ALTER TABLE members ADD COLUMN wrote INTEGER NOT NULL DEFAULT 0;

-- One pass over messages, not one probe per member.
UPDATE members SET wrote = 1
WHERE (conversation_id, user_id) IN (SELECT DISTINCT conversation_id, sender_id FROM messages);

-- +goose Down
ALTER TABLE members DROP COLUMN wrote;
