-- The webhook outbox per shard of the event log (issue 18; migration
-- 00012 split the log into shards, whose positions are dense per shard
-- only). The enqueuer's cursor is one row per shard (a shard with no row
-- has never been enqueued: -1), and a delivery is keyed by its event's
-- (shard, pos). A one-shard log keeps its cursor and deliveries in shard 0.

-- +goose Up
CREATE TABLE webhook_cursor_new (
    shard integer PRIMARY KEY CHECK (shard BETWEEN 0 AND 255),
    pos   bigint  NOT NULL
);
INSERT INTO webhook_cursor_new (shard, pos) SELECT 0, pos FROM webhook_cursor WHERE pos >= 0;
DROP TABLE webhook_cursor;
ALTER TABLE webhook_cursor_new RENAME TO webhook_cursor;

ALTER TABLE webhook_outbox ADD COLUMN shard integer NOT NULL DEFAULT 0;
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_pkey;
ALTER TABLE webhook_outbox ADD PRIMARY KEY (endpoint, shard, pos);

-- +goose Down
-- Only shard 0 goes back: the other shards' positions would collide.
DELETE FROM webhook_outbox WHERE shard <> 0;
ALTER TABLE webhook_outbox DROP CONSTRAINT webhook_outbox_pkey;
ALTER TABLE webhook_outbox ADD PRIMARY KEY (endpoint, pos);
ALTER TABLE webhook_outbox DROP COLUMN shard;

CREATE TABLE webhook_cursor_old (
    id  integer PRIMARY KEY CHECK (id = 1),
    pos bigint NOT NULL
);
INSERT INTO webhook_cursor_old (id, pos) SELECT 1, COALESCE((SELECT pos FROM webhook_cursor WHERE shard = 0), -1);
DROP TABLE webhook_cursor;
ALTER TABLE webhook_cursor_old RENAME TO webhook_cursor;
