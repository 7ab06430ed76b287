-- Parley's PostgreSQL schema: the same tables as the SQLite store's, with
-- PostgreSQL types. Every node of a cluster uses it; goose applies it under
-- a session advisory lock, so nodes starting together migrate once.

-- +goose Up
CREATE TABLE users (
    id            text PRIMARY KEY,
    name          text NOT NULL,
    password_hash bytea,
    created_at    timestamptz NOT NULL
);

-- "Alice" and "alice" are one name, so nobody can pose as someone else by
-- changing case.
CREATE UNIQUE INDEX users_name ON users (lower(name));

CREATE TABLE conversations (
    id               text PRIMARY KEY,
    kind             text NOT NULL CHECK (kind IN ('direct', 'group')),
    title            text NOT NULL DEFAULT '',
    created_by       text NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL,
    -- last_seq is the Seq of the newest message; the next one gets last_seq+1.
    last_seq         bigint NOT NULL DEFAULT 0,
    last_activity_at timestamptz NOT NULL,
    -- A direct conversation's pair in canonical order (direct_a < direct_b),
    -- NULL for groups: the unique index makes "one per pair" a fact of the
    -- schema rather than of the code.
    direct_a         text REFERENCES users (id),
    direct_b         text REFERENCES users (id),
    CHECK ((kind = 'direct') = (direct_a IS NOT NULL AND direct_b IS NOT NULL AND direct_a < direct_b))
);

CREATE UNIQUE INDEX conversations_direct_pair ON conversations (direct_a, direct_b) WHERE kind = 'direct';

-- One row per membership window: a user removed and added again has two
-- rows. left_pos is NULL while the user is a member. A user receives the
-- conversation's events with joined_pos <= pos <= left_pos.
CREATE TABLE members (
    conversation_id text NOT NULL REFERENCES conversations (id),
    user_id         text NOT NULL REFERENCES users (id),
    joined_pos      bigint NOT NULL,
    left_pos        bigint,
    read_seq        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id, joined_pos)
);

CREATE UNIQUE INDEX members_current ON members (conversation_id, user_id) WHERE left_pos IS NULL;
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE attachments (
    id           text PRIMARY KEY,
    owner_id     text NOT NULL REFERENCES users (id),
    content_type text NOT NULL,
    size         bigint NOT NULL,
    width        integer NOT NULL,
    height       integer NOT NULL,
    data         bytea NOT NULL,
    thumb        bytea,
    created_at   timestamptz NOT NULL
);

CREATE TABLE messages (
    id              text PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id),
    seq             bigint NOT NULL,
    sender_id       text NOT NULL REFERENCES users (id),
    client_id       text NOT NULL,
    type            text NOT NULL,
    text            text NOT NULL DEFAULT '',
    attachment_id   text REFERENCES attachments (id),
    created_at      timestamptz NOT NULL,
    deleted_at      timestamptz,
    UNIQUE (conversation_id, seq),
    -- The idempotency key of SendMessage.
    UNIQUE (sender_id, client_id)
);

CREATE INDEX messages_attachment ON messages (attachment_id) WHERE attachment_id IS NOT NULL;

-- The event log. pos is the global, dense, commit-ordered position (see
-- positions). The message of a newMessage/messageDeleted event is read from
-- messages at replay time, so a deleted message replays as a tombstone.
-- data holds the rest (read_seq, change, user_ids, conversation snapshot).
CREATE TABLE events (
    pos             bigint PRIMARY KEY,
    conversation_id text NOT NULL REFERENCES conversations (id),
    type            text NOT NULL,
    actor_id        text NOT NULL REFERENCES users (id),
    message_id      text REFERENCES messages (id),
    data            jsonb NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL
);

CREATE INDEX events_by_conversation ON events (conversation_id, pos);

-- The one counter row positions come from: head is the newest committed
-- position. Only a batch holding the positions advisory lock reads and
-- moves it (batch.go), which is what keeps positions dense and in commit
-- order across nodes.
CREATE TABLE positions (
    id   integer PRIMARY KEY CHECK (id = 1),
    head bigint NOT NULL
);

INSERT INTO positions (id, head) VALUES (1, 0);

-- +goose Down
DROP TABLE positions;
DROP TABLE events;
DROP TABLE messages;
DROP TABLE attachments;
DROP TABLE members;
DROP TABLE conversations;
DROP TABLE users;
