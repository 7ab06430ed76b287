-- Integrations (issue 16): the webhook outbox and its cursor, the server
-- API's keys and the users it banned. Times are Unix milliseconds.

-- +goose Up
-- One row: the position up to which events were enqueued (-1: never ran).
CREATE TABLE webhook_cursor (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    pos INTEGER NOT NULL
);
INSERT INTO webhook_cursor (id, pos) VALUES (1, -1);

CREATE TABLE webhook_outbox (
    endpoint        TEXT    NOT NULL,
    pos             INTEGER NOT NULL,
    conversation_id TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (endpoint, pos)
);
-- The head of each conversation's queue (ClaimWebhooks).
CREATE INDEX webhook_outbox_conversation ON webhook_outbox (endpoint, conversation_id, pos);

CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       BLOB    NOT NULL UNIQUE,
    scopes     TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);

CREATE TABLE user_bans (
    user_id   TEXT    PRIMARY KEY,
    banned_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE user_bans;
DROP TABLE api_keys;
DROP TABLE webhook_outbox;
DROP TABLE webhook_cursor;
