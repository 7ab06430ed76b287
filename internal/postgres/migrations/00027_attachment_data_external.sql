-- Attachment data stored out of line uncompressed (STORAGE EXTERNAL, was
-- EXTENDED): a download reads its attachment a chunk at a time
-- (parley.Store.ReadAttachment, substr), and substr of an uncompressed
-- TOAST value fetches only the TOAST chunks its slice spans, where a
-- compressed one is fetched whole and decompressed up to the slice's
-- end, each chunk of a download again. Images are compressed already
-- (PNG, JPEG, WebP, GIF: pglz gave up on them anyway); a compressible
-- file (text, PDF) now takes its full size on disk, which is what the
-- quota counts (attachments.size) already.
--
-- A change of the column's default alone: rows stored before keep their
-- form (rewriting every attachment is not worth a migration's lock),
-- so a download of an older compressed file still decompresses per
-- chunk; it is correct, only slower.

-- +goose Up
ALTER TABLE attachments ALTER COLUMN data SET STORAGE EXTERNAL;

-- +goose Down
ALTER TABLE attachments ALTER COLUMN data SET STORAGE EXTENDED;
