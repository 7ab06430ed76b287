-- Integrations (issue 16): the webhook outbox and its cursor, the server
-- API's keys and the users it banned. Times are Unix milliseconds.

-- +goose Up
-- One row: the position up to which events were enqueued (-1: never ran).
CREATE TABLE webhook_cursor (
    id  integer PRIMARY KEY CHECK (id = 1),
    pos bigint NOT NULL
);
INSERT INTO webhook_cursor (id, pos) VALUES (1, -1);

CREATE TABLE webhook_outbox (
    endpoint        TEXT    NOT NULL,
    pos             bigint  NOT NULL,
    conversation_id TEXT    NOT NULL,
    payload         bytea   NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_at         bigint  NOT NULL,
    created_at      bigint  NOT NULL,
    PRIMARY KEY (endpoint, pos)
);
-- The head of each conversation's queue (ClaimWebhooks).
CREATE INDEX webhook_outbox_conversation ON webhook_outbox (endpoint, conversation_id, pos);

CREATE TABLE api_keys (
    id         TEXT    PRIMARY KEY,
    name       TEXT    NOT NULL,
    hash       bytea   NOT NULL UNIQUE,
    scopes     TEXT    NOT NULL,
    created_at bigint  NOT NULL,
    revoked_at bigint
);

CREATE TABLE user_bans (
    user_id   TEXT    PRIMARY KEY,
    banned_at bigint  NOT NULL
);

-- +goose Down
DROP TABLE user_bans;
DROP TABLE api_keys;
DROP TABLE webhook_outbox;
DROP TABLE webhook_cursor;
