-- The event log split into shards (issue 18, item 4; docs/architecture.md,
-- "Design: writes that grow with nodes"). A conversation's events go to
-- the shard parley.ShardOf(conversation id, shards), each shard with its
-- own dense positions: (shard, pos) is unique, pos alone no longer. SQLite
-- keeps one writer, so its shards gain nothing in speed; it has them so
-- that both stores keep one contract. A shard's head is its largest pos.
--
-- log_shards records the shard count: 1 (today's single log) until a
-- store is opened with more shards on an empty log.

-- +goose Up
CREATE TABLE log_shards (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    shards INTEGER NOT NULL CHECK (shards BETWEEN 1 AND 256)
) STRICT;
INSERT INTO log_shards (id, shards) VALUES (1, 1);

CREATE TABLE events_new (
    id              INTEGER PRIMARY KEY,
    shard           INTEGER NOT NULL DEFAULT 0,
    pos             INTEGER NOT NULL,
    conversation_id TEXT REFERENCES conversations (id),
    type            TEXT NOT NULL,
    actor_id        TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT REFERENCES messages (id),
    data            TEXT NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL,
    recipient       TEXT,
    UNIQUE (shard, pos)
) STRICT;
INSERT INTO events_new (id, shard, pos, conversation_id, type, actor_id, message_id, data, at, recipient)
    SELECT pos, 0, pos, conversation_id, type, actor_id, message_id, data, at, recipient FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_by_conversation ON events (conversation_id, pos);
CREATE INDEX events_of_user ON events (recipient, pos) WHERE conversation_id IS NULL;

-- +goose Down
-- Only a one-shard log goes back: the other shards' events would collide.
CREATE TABLE events_old (
    pos             INTEGER PRIMARY KEY,
    conversation_id TEXT REFERENCES conversations (id),
    type            TEXT NOT NULL,
    actor_id        TEXT NOT NULL REFERENCES users (id),
    message_id      TEXT REFERENCES messages (id),
    data            TEXT NOT NULL DEFAULT '{}',
    at              INTEGER NOT NULL,
    recipient       TEXT
) STRICT;
INSERT INTO events_old (pos, conversation_id, type, actor_id, message_id, data, at, recipient)
    SELECT pos, conversation_id, type, actor_id, message_id, data, at, recipient FROM events WHERE shard = 0;
DROP TABLE events;
ALTER TABLE events_old RENAME TO events;
CREATE INDEX events_by_conversation ON events (conversation_id, pos);
CREATE INDEX events_of_user ON events (recipient, pos) WHERE conversation_id IS NULL;
DROP TABLE log_shards;
