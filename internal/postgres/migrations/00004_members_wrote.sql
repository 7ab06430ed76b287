-- Presence privacy: a direct conversation makes its two users contacts
-- (they see each other's presence) only once both have written in it, so
-- a stranger who opens one learns nothing. members.wrote records that a
-- member has sent a message in the conversation; a send sets it in the
-- same statement that moves the sender's read position.

-- +goose Up
ALTER TABLE members ADD COLUMN wrote boolean NOT NULL DEFAULT false;

-- One pass over messages, not one probe per member.
UPDATE members SET wrote = true
FROM (SELECT DISTINCT conversation_id, sender_id FROM messages) m
WHERE members.conversation_id = m.conversation_id AND members.user_id = m.sender_id;

-- +goose Down
ALTER TABLE members DROP COLUMN wrote;
