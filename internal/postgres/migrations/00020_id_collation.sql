-- Ids and keys compare bytes (issues 12 and 18).
--
-- Every hot btree of the send path is keyed on text ids: messages (id),
-- (conversation_id, seq), (sender_id, client_id); events
-- (conversation_id, pos); members (conversation_id, user_id); the primary
-- keys the foreign keys look up (users, conversations, messages); search_docs
-- (conversation_id, ...). Under the database's collation (often a libc
-- locale such as en_US.UTF-8 or C.UTF-8) PostgreSQL compares such keys
-- with strcoll, in varstr_cmp; only "C" (and "POSIX") compare with
-- memcmp. The text comparisons were ~10% of PostgreSQL's CPU per message
-- under `parley bench write` (docs/benchmarks.md, "PostgreSQL cost per
-- message (2026-12-06, h-pgwrite)").
--
-- An id is an opaque string (any UTF-8, parley.ValidateID): nobody reads
-- an order into it, but the code does. Go and the SQLite store order
-- strings by their bytes, which for UTF-8 is code point order; "C" does
-- the same, so PostgreSQL now agrees with them on every database,
-- whatever its locale: the audience's order (joined_pos, user_id),
-- paging by client id, and the direct pair's CHECK (direct_a < direct_b,
-- with the pair ordered in Go by min/max), which a locale that orders
-- "B" after "a" would have refused. Equality is unchanged (every libc
-- collation is deterministic). Names, titles, texts and other words
-- people read or sort (users.name, name_key, display_name,
-- conversations.title, reactions.emoji, ...) keep the database's
-- collation.
--
-- Changing a column's collation rewrites no table (text to text), but
-- rebuilds each index on the column and may check the foreign keys and
-- CHECKs again: on a large store, run it at a quiet time.

-- +goose Up
ALTER TABLE users
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN avatar_id TYPE text COLLATE "C";
ALTER TABLE conversations
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN created_by TYPE text COLLATE "C",
    ALTER COLUMN direct_a TYPE text COLLATE "C",
    ALTER COLUMN direct_b TYPE text COLLATE "C";
ALTER TABLE members
    ALTER COLUMN conversation_id TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE attachments
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN owner_id TYPE text COLLATE "C";
ALTER TABLE messages
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN conversation_id TYPE text COLLATE "C",
    ALTER COLUMN sender_id TYPE text COLLATE "C",
    ALTER COLUMN client_id TYPE text COLLATE "C",
    ALTER COLUMN attachment_id TYPE text COLLATE "C",
    ALTER COLUMN reply_to_id TYPE text COLLATE "C";
ALTER TABLE events
    ALTER COLUMN conversation_id TYPE text COLLATE "C",
    ALTER COLUMN actor_id TYPE text COLLATE "C",
    ALTER COLUMN message_id TYPE text COLLATE "C",
    ALTER COLUMN recipient TYPE text COLLATE "C";
ALTER TABLE mentions
    ALTER COLUMN conversation_id TYPE text COLLATE "C",
    ALTER COLUMN message_id TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE message_edits
    ALTER COLUMN message_id TYPE text COLLATE "C",
    ALTER COLUMN sender_id TYPE text COLLATE "C",
    ALTER COLUMN client_id TYPE text COLLATE "C";
ALTER TABLE reactions
    ALTER COLUMN message_id TYPE text COLLATE "C",
    ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE blocks
    ALTER COLUMN blocker_id TYPE text COLLATE "C",
    ALTER COLUMN blocked_id TYPE text COLLATE "C";
ALTER TABLE user_bans
    ALTER COLUMN user_id TYPE text COLLATE "C";
ALTER TABLE search_docs
    ALTER COLUMN conversation_id TYPE text COLLATE "C",
    ALTER COLUMN message_id TYPE text COLLATE "C";
ALTER TABLE webhook_outbox
    ALTER COLUMN endpoint TYPE text COLLATE "C",
    ALTER COLUMN conversation_id TYPE text COLLATE "C";
ALTER TABLE api_keys
    ALTER COLUMN id TYPE text COLLATE "C";

-- +goose Down
ALTER TABLE api_keys
    ALTER COLUMN id TYPE text COLLATE "default";
ALTER TABLE webhook_outbox
    ALTER COLUMN endpoint TYPE text COLLATE "default",
    ALTER COLUMN conversation_id TYPE text COLLATE "default";
ALTER TABLE search_docs
    ALTER COLUMN conversation_id TYPE text COLLATE "default",
    ALTER COLUMN message_id TYPE text COLLATE "default";
ALTER TABLE user_bans
    ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE blocks
    ALTER COLUMN blocker_id TYPE text COLLATE "default",
    ALTER COLUMN blocked_id TYPE text COLLATE "default";
ALTER TABLE reactions
    ALTER COLUMN message_id TYPE text COLLATE "default",
    ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE message_edits
    ALTER COLUMN message_id TYPE text COLLATE "default",
    ALTER COLUMN sender_id TYPE text COLLATE "default",
    ALTER COLUMN client_id TYPE text COLLATE "default";
ALTER TABLE mentions
    ALTER COLUMN conversation_id TYPE text COLLATE "default",
    ALTER COLUMN message_id TYPE text COLLATE "default",
    ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE events
    ALTER COLUMN conversation_id TYPE text COLLATE "default",
    ALTER COLUMN actor_id TYPE text COLLATE "default",
    ALTER COLUMN message_id TYPE text COLLATE "default",
    ALTER COLUMN recipient TYPE text COLLATE "default";
ALTER TABLE messages
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN conversation_id TYPE text COLLATE "default",
    ALTER COLUMN sender_id TYPE text COLLATE "default",
    ALTER COLUMN client_id TYPE text COLLATE "default",
    ALTER COLUMN attachment_id TYPE text COLLATE "default",
    ALTER COLUMN reply_to_id TYPE text COLLATE "default";
ALTER TABLE attachments
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN owner_id TYPE text COLLATE "default";
ALTER TABLE members
    ALTER COLUMN conversation_id TYPE text COLLATE "default",
    ALTER COLUMN user_id TYPE text COLLATE "default";
ALTER TABLE conversations
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN created_by TYPE text COLLATE "default",
    ALTER COLUMN direct_a TYPE text COLLATE "default",
    ALTER COLUMN direct_b TYPE text COLLATE "default";
ALTER TABLE users
    ALTER COLUMN id TYPE text COLLATE "default",
    ALTER COLUMN avatar_id TYPE text COLLATE "default";
