-- Files (issue 14 item 5): an attachment may be a file of any type, whose
-- original name (sanitised, for display only) is kept. An image has none
-- (''), which is also what every upload stored before this migration gets.

-- +goose Up
ALTER TABLE attachments ADD COLUMN name TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE attachments DROP COLUMN name;
