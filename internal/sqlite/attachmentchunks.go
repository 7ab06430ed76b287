package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"

	"github.com/parleychat/parley/internal/sqlstore"
)

// AttachmentChunks: SQLite keeps an attachment's data in rows of
// sqlstore.AttachmentChunkBytes (sqlstore.ChunkedAttachments). substr of
// a blob reads the whole blob first, and the driver has no incremental
// blob I/O, so a download reading a 25 MiB attachment a chunk at a time
// from one blob read it 25 times; a chunk row reads its own 1 MiB. The
// attachments row, its data column empty, is a few hundred bytes, so
// reading its name or thumbnail no longer walks the data's overflow
// pages either.
func (dialect) AttachmentChunks() bool { return true }

// attachmentChunksVersion is migration 00024, in Go (migrate adds it to
// the SQL files): the table of chunks, and the data of the attachments
// already stored moved into it. In Go because SQL can only cut a blob
// with substr, which reads the whole blob for each chunk (quadratic in
// the blob's size); here each blob is read once, one at a time (the
// migration holds one attachment's bytes, at most the upload limit).
const attachmentChunksVersion = 24

func attachmentChunksMigration() *goose.Migration {
	return goose.NewGoMigration(attachmentChunksVersion,
		&goose.GoFunc{RunTx: chunkAttachments},
		&goose.GoFunc{RunTx: unchunkAttachments})
}

func chunkAttachments(ctx context.Context, tx *sql.Tx) error {
	// Chunks go when their attachment does, whichever delete removes it
	// (the orphan sweep, an erase).
	for _, q := range []string{
		`CREATE TABLE attachment_chunks (
			attachment_id TEXT NOT NULL,
			n             INTEGER NOT NULL,
			data          BLOB NOT NULL,
			PRIMARY KEY (attachment_id, n)
		) STRICT`,
		`CREATE TRIGGER attachment_chunks_delete AFTER DELETE ON attachments BEGIN
			DELETE FROM attachment_chunks WHERE attachment_id = OLD.id;
		END`,
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	for after := ""; ; {
		// One attachment at a time, in id order; length() reads the
		// blob's size from the record header, not its bytes.
		var (
			id   string
			data []byte
		)
		err := tx.QueryRowContext(ctx, `SELECT id, data FROM attachments WHERE id > $1 AND length(data) > 0 ORDER BY id LIMIT 1`, after).Scan(&id, &data)
		if err == sql.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		for n := 0; n*sqlstore.AttachmentChunkBytes < len(data); n++ {
			chunk := data[n*sqlstore.AttachmentChunkBytes : min(len(data), (n+1)*sqlstore.AttachmentChunkBytes)]
			if _, err := tx.ExecContext(ctx, `INSERT INTO attachment_chunks (attachment_id, n, data) VALUES ($1, $2, $3)`, id, n, chunk); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE attachments SET data = X'' WHERE id = $1`, id); err != nil {
			return err
		}
		after = id
	}
}

// unchunkAttachments is the migration's Down: each attachment's chunks
// joined into its data column again, then the table dropped.
func unchunkAttachments(ctx context.Context, tx *sql.Tx) error {
	for after := ""; ; {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT DISTINCT attachment_id FROM attachment_chunks WHERE attachment_id > $1 ORDER BY attachment_id LIMIT 1`, after).Scan(&id)
		if err == sql.ErrNoRows {
			break
		}
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT n, data FROM attachment_chunks WHERE attachment_id = $1 ORDER BY n`, id)
		if err != nil {
			return err
		}
		var data []byte
		for want := 0; rows.Next(); want++ {
			var (
				n     int
				chunk []byte
			)
			if err := rows.Scan(&n, &chunk); err != nil {
				rows.Close()
				return err
			}
			if n != want {
				rows.Close()
				return fmt.Errorf("attachment %s has no chunk %d", id, want)
			}
			data = append(data, chunk...)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE attachments SET data = $1 WHERE id = $2`, data, id); err != nil {
			return err
		}
		after = id
	}
	for _, q := range []string{`DROP TRIGGER attachment_chunks_delete`, `DROP TABLE attachment_chunks`} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
