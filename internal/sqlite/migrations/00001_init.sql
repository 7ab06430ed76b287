-- Parley's SQLite schema. Times are INTEGER microseconds since the Unix
-- epoch (UTC); see convert.go.

-- +goose Up
CREATE TABLE users (
    id            TEXT PRIMARY KEY,
    -- NOCASE: "Alice" and "alice" are one name, so nobody can pose as
    -- someone else by changing case.
    name          TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash BLOB,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE conversations (
    id               TEXT PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
    title            TEXT NOT NULL DEFAULT '',
    created_by       TEXT NOT NULL REFERENCES users (id),
    created_at       INTEGER NOT NULL,
    -- last_seq is the Seq of the newest message; the next one gets last_seq+1.
    last_seq         INTEGER NOT NULL DEFAULT 0,
    last_activity_at INTEGER NOT NULL,
    -- A direct conversation's pair in canonical order (direct_a < direct_b),
    -- NULL for groups: the unique index makes "one per pair" a fact of the
    -- schema rather than of the code.
    direct_a         TEXT REFERENCES users (id),
    direct_b         TEXT REFERENCES users (id),
    CHECK ((kind = 'direct') = (direct_a IS NOT NULL AND direct_b IS NOT NULL AND direct_a < direct_b))
) STRICT;

CREATE UNIQUE INDEX conversations_direct_pair ON conversations (direct_a, direct_b) WHERE kind = 'direct';

-- One row per membership window: a user removed and added again has two
-- rows. left_pos is NULL while the user is a member. A user receives the
-- conversation's events with joined_pos <= pos <= left_pos.
CREATE TABLE members (
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    user_id         TEXT NOT NULL REFERENCES users (id),
    joined_pos      INTEGER NOT NULL,
    left_pos        INTEGER,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id, joined_pos)
) STRICT;

CREATE UNIQUE INDEX members_current ON members (conversation_id, user_id) WHERE left_pos IS NULL;
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE attachments (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL REFERENCES users (id),
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL,
    width        INTEGER NOT NULL,
    height       INTEGER NOT NULL,
    data         BLOB NOT NULL,
    thumb        BLOB,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE messages (
    id              TEXT PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    seq             INTEGER NOT NULL,
    sender_id       TEXT NOT NULL REFERENCES users (id),
    client_id       TEXT NOT NULL,
    type            TEXT NOT NULL,
    text            TEXT NOT NULL DEFAULT '',
    attachment_id   TEXT REFERENCES attachments (id),
    created_at      INTEGER NOT NULL,
    deleted_at      INTEGER,
    UNIQUE (conversation_id, seq),
    -- The idempotency key of SendMessage.
    UNIQUE (sender_id, client_id)
) STRICT;

CREATE INDEX messages_attachment ON messages (attachment_id) WHERE attachment_id IS NOT NULL;

-- The event log. pos is the global, dense, commit-ordered position. The
-- message of a newMessage/messageDeleted event is read from messages at
-- replay time, so a deleted message replays as a tombstone. data holds the
-- rest as JSON (read_seq, change, user_ids, conversation snapshot).
CREATE TABLE events (
    pos             INTEGER PRIMARY KEY,
    conversation_id TEXT NOT NULL REFERENCES conversations (id),
    type            TEXT NOT NULL,
    actor_id        TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT REFERENCES messages (id),
    data            TEXT NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL
) STRICT;

CREATE INDEX events_by_conversation ON events (conversation_id, pos);

-- +goose Down
DROP TABLE events;
DROP TABLE messages;
DROP TABLE attachments;
DROP TABLE members;
DROP TABLE conversations;
DROP TABLE users;
