-- Consent and blocks (issue 15, items 2 and 3).
--
-- users.consent: who may start a direct conversation with the user or add
-- them to a group, 'everyone' or 'contacts'.
-- blocks: blocker_id blocked blocked_id.
-- members.request: 1 for the recipient of a direct conversation started
-- by a non-contact (a request: pending while the member has not written
-- in it, see members.wrote; accepting sets wrote), 2 once they declined
-- it, 0 otherwise.
-- events.conversation_id becomes nullable: a user's own settings
-- (blocks, consent) are events of no conversation, for their recipient
-- alone. SQLite cannot drop NOT NULL, so the table is rebuilt.

-- +goose Up
ALTER TABLE users ADD COLUMN consent TEXT NOT NULL DEFAULT 'everyone' CHECK (consent IN ('everyone', 'contacts'));

CREATE TABLE blocks (
    blocker_id TEXT NOT NULL REFERENCES users (id),
    blocked_id TEXT NOT NULL REFERENCES users (id),
    at         INTEGER NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
) STRICT;
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);

ALTER TABLE members ADD COLUMN request INTEGER NOT NULL DEFAULT 0;

CREATE TABLE events_new (
    pos             INTEGER PRIMARY KEY,
    conversation_id TEXT REFERENCES conversations (id),
    type            TEXT NOT NULL,
    actor_id        TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT REFERENCES messages (id),
    data            TEXT NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL,
    recipient       TEXT
) STRICT;
INSERT INTO events_new (pos, conversation_id, type, actor_id, message_id, data, at, recipient)
    SELECT pos, conversation_id, type, actor_id, message_id, data, at, recipient FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_conversation ON events (conversation_id, pos);
CREATE INDEX events_of_user ON events (recipient, pos) WHERE conversation_id IS NULL;

-- +goose Down
DELETE FROM events WHERE conversation_id IS NULL;
DROP INDEX events_of_user;
ALTER TABLE members DROP COLUMN request;
DROP TABLE blocks;
ALTER TABLE users DROP COLUMN consent;
