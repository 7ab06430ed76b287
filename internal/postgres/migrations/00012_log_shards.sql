-- The event log split into shards (issue 18, item 4; docs/architecture.md,
-- "Design: writes that grow with nodes"). A conversation's events go to
-- the shard parley.ShardOf(conversation id, shards); each shard has its
-- own dense positions (one row of positions per shard) and its own
-- advisory lock, so batches of different shards commit in parallel.
--
-- log_shards records the shard count. It is 1 (today's single log, row 0
-- of positions holding the old head) until a store is opened with more
-- shards on an empty log; changing it once events exist would move
-- conversations between shards, which needs a migration of its own.

-- +goose Up
CREATE TABLE log_shards (
    id     integer PRIMARY KEY CHECK (id = 1),
    shards integer NOT NULL CHECK (shards BETWEEN 1 AND 256)
);
INSERT INTO log_shards (id, shards) VALUES (1, 1);

ALTER TABLE positions DROP CONSTRAINT positions_id_check;
ALTER TABLE positions RENAME COLUMN id TO shard;
UPDATE positions SET shard = 0;
ALTER TABLE positions ADD CONSTRAINT positions_shard_check CHECK (shard >= 0);

ALTER TABLE events ADD COLUMN shard integer NOT NULL DEFAULT 0;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events ADD PRIMARY KEY (shard, pos);

-- +goose Down
-- Only a one-shard log goes back: the other shards' events would collide.
DELETE FROM events WHERE shard != 0;
ALTER TABLE events DROP CONSTRAINT events_pkey;
ALTER TABLE events DROP COLUMN shard;
ALTER TABLE events ADD PRIMARY KEY (pos);
DELETE FROM positions WHERE shard != 0;
ALTER TABLE positions DROP CONSTRAINT positions_shard_check;
ALTER TABLE positions RENAME COLUMN shard TO id;
UPDATE positions SET id = 1;
ALTER TABLE positions ADD CONSTRAINT positions_id_check CHECK (id = 1);
DROP TABLE log_shards;
