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
-- alone.

-- +goose Up
ALTER TABLE users ADD COLUMN consent text NOT NULL DEFAULT 'everyone' CHECK (consent IN ('everyone', 'contacts'));

CREATE TABLE blocks (
    blocker_id text NOT NULL REFERENCES users (id),
    blocked_id text NOT NULL REFERENCES users (id),
    at         timestamptz NOT NULL,
    PRIMARY KEY (blocker_id, blocked_id)
);
CREATE INDEX blocks_by_blocked ON blocks (blocked_id, blocker_id);

ALTER TABLE members ADD COLUMN request smallint NOT NULL DEFAULT 0;

ALTER TABLE events ALTER COLUMN conversation_id DROP NOT NULL;
CREATE INDEX events_of_user ON events (recipient, pos) WHERE conversation_id IS NULL;

-- +goose Down
DELETE FROM events WHERE conversation_id IS NULL;
DROP INDEX events_of_user;
ALTER TABLE events ALTER COLUMN conversation_id SET NOT NULL;
ALTER TABLE members DROP COLUMN request;
DROP TABLE blocks;
ALTER TABLE users DROP COLUMN consent;
