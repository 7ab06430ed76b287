package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// TestAttachmentDataUncompressed: attachment data is stored out of line
// uncompressed (STORAGE EXTERNAL, migration 00027), even a compressible
// file, so that a download's substr of a chunk fetches the TOAST chunks
// it spans alone. Before, pglz compressed such a file, and each chunk's
// substr fetched the whole value and decompressed it up to the chunk.
func TestAttachmentDataUncompressed(t *testing.T) {
	dsn := pgtest.Schema(t)
	db := open(t, dsn)
	u := mustUser(t, db, "alice")
	data := bytes.Repeat([]byte("a report, "), 400_000) // 4 MB that pglz shrinks well
	a := parley.Attachment{ID: "report", ContentType: "text/plain", Size: int64(len(data)), Name: "r.txt"}
	if err := db.PutAttachment(t.Context(), u.ID, a, data, nil, 0); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var (
		storage     string
		compression *string
		stored      int64
	)
	err = conn.QueryRow(ctx, `SELECT a.attstorage::text, pg_column_compression(t.data), pg_column_size(t.data)
		FROM attachments t, pg_attribute a
		WHERE t.id = $1 AND a.attrelid = 'attachments'::regclass AND a.attname = 'data'`, a.ID).Scan(&storage, &compression, &stored)
	if err != nil {
		t.Fatal(err)
	}
	if storage != "e" || compression != nil || stored < int64(len(data)) {
		t.Errorf("attachments.data: storage %q, compression %v, %d bytes stored of %d; want e (EXTERNAL), none, all of them",
			storage, compression, stored, len(data))
	}
}
