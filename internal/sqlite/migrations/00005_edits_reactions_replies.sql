-- Messages users expect (issue 14): edits, reactions and replies.
--
-- messages.edited_at: when the sender last edited the text (NULL: never).
-- messages.reply_to_id: the message this one replies to. The quote a reply
-- shows is read from that row when the reply is read, so it follows the
-- parent's edits and delete without any write to the reply.
-- message_edits: the client ids of applied edits, the idempotency key of
-- an edit as (sender_id, client_id) is of a send.
-- reactions: one row per (message, user, emoji); pos is the position of
-- the reactionAdded event, which orders a message's emoji by first use.
-- The primary key's prefix serves the reads by message.

-- +goose Up
ALTER TABLE messages ADD COLUMN edited_at INTEGER;
ALTER TABLE messages ADD COLUMN reply_to_id TEXT REFERENCES messages (id);

CREATE TABLE message_edits (
    sender_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (id),
    PRIMARY KEY (sender_id, client_id)
) STRICT;

CREATE TABLE reactions (
    message_id TEXT NOT NULL REFERENCES messages (id),
    user_id    TEXT NOT NULL REFERENCES users (id),
    emoji      TEXT NOT NULL,
    pos        INTEGER NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
) STRICT;

-- +goose Down
DROP TABLE reactions;
DROP TABLE message_edits;
ALTER TABLE messages DROP COLUMN reply_to_id;
ALTER TABLE messages DROP COLUMN edited_at;
