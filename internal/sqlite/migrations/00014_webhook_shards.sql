-- The webhook outbox per shard of the event log (issue 18; migration
-- 00012 split the log into shards, whose positions are dense per shard
-- only). The enqueuer's cursor is one row per shard (a shard with no row
-- has never been enqueued: -1), and a delivery is keyed by its event's
-- (shard, pos). A one-shard log keeps its cursor and deliveries in shard 0.

-- +goose Up
CREATE TABLE webhook_cursor_new (
    shard INTEGER PRIMARY KEY CHECK (shard BETWEEN 0 AND 255),
    pos   INTEGER NOT NULL
);
INSERT INTO webhook_cursor_new (shard, pos) SELECT 0, pos FROM webhook_cursor WHERE pos >= 0;
DROP TABLE webhook_cursor;
ALTER TABLE webhook_cursor_new RENAME TO webhook_cursor;

CREATE TABLE webhook_outbox_new (
    endpoint        TEXT    NOT NULL,
    shard           INTEGER NOT NULL DEFAULT 0,
    pos             INTEGER NOT NULL,
    conversation_id TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (endpoint, shard, pos)
);
INSERT INTO webhook_outbox_new (endpoint, shard, pos, conversation_id, payload, attempts, next_at, created_at)
    SELECT endpoint, 0, pos, conversation_id, payload, attempts, next_at, created_at FROM webhook_outbox;
DROP TABLE webhook_outbox;
ALTER TABLE webhook_outbox_new RENAME TO webhook_outbox;
-- The head of each conversation's queue (ClaimWebhooks); a conversation
-- is in one shard.
CREATE INDEX webhook_outbox_conversation ON webhook_outbox (endpoint, conversation_id, pos);

-- +goose Down
-- Only shard 0 goes back: the other shards' positions would collide.
CREATE TABLE webhook_cursor_old (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    pos INTEGER NOT NULL
);
INSERT INTO webhook_cursor_old (id, pos) SELECT 1, COALESCE((SELECT pos FROM webhook_cursor WHERE shard = 0), -1);
DROP TABLE webhook_cursor;
ALTER TABLE webhook_cursor_old RENAME TO webhook_cursor;

CREATE TABLE webhook_outbox_old (
    endpoint        TEXT    NOT NULL,
    pos             INTEGER NOT NULL,
    conversation_id TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (endpoint, pos)
);
INSERT INTO webhook_outbox_old (endpoint, pos, conversation_id, payload, attempts, next_at, created_at)
    SELECT endpoint, pos, conversation_id, payload, attempts, next_at, created_at FROM webhook_outbox WHERE shard = 0;
DROP TABLE webhook_outbox;
ALTER TABLE webhook_outbox_old RENAME TO webhook_outbox;
CREATE INDEX webhook_outbox_conversation ON webhook_outbox (endpoint, conversation_id, pos);
