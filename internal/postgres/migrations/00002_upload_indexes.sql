-- Indexes for upload bookkeeping: the orphan sweep reads attachments by
-- age (unsent ones are deleted after a while), and the upload quota sums
-- one owner's.

-- +goose Up
CREATE INDEX attachments_by_created ON attachments (created_at);
CREATE INDEX attachments_by_owner ON attachments (owner_id);

-- +goose Down
DROP INDEX attachments_by_owner;
DROP INDEX attachments_by_created;
