package sqlite_test

import (
	"bytes"
	"database/sql"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
)

// TestAttachmentChunks: SQLite keeps an attachment's data in chunk rows
// of sqlstore.AttachmentChunkBytes (migration 00024), so a download
// reading a chunk reads that chunk's row, not the whole blob. An upload
// is stored so (its attachments row's data empty), a read across chunk
// boundaries gets the right bytes, the orphan sweep takes the chunks with
// the attachment, and a file of an older release (data inline) upgrades
// with every attachment's bytes moved into chunks, equal; the migration's
// Down puts them back inline.
func TestAttachmentChunks(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "parley.db")
	db := open(t, path)
	a, conv := lagUsers(t, db)
	rng := rand.New(rand.NewPCG(1, 2))
	blob := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	const chunk = sqlstore.AttachmentChunkBytes
	files := map[string][]byte{
		"big":   blob(2*chunk + 12345), // three chunks, the last short
		"exact": blob(chunk),           // one full chunk
		"small": blob(100),
	}
	for id, data := range files {
		att := parley.Attachment{ID: id, ContentType: "application/octet-stream", Size: int64(len(data)), Name: id + ".bin"}
		if err := db.PutAttachment(ctx, a.ID, att, data, nil, 0); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: id, Type: parley.File, AttachmentID: id}); err != nil {
			t.Fatal(err)
		}
	}
	// An image with no thumbnail: its thumbnail read is its data.
	img := blob(chunk + 7)
	if err := db.PutAttachment(ctx, a.ID, parley.Attachment{ID: "img", ContentType: "image/png", Size: int64(len(img)), Width: 1, Height: 1}, img, nil, 0); err != nil {
		t.Fatal(err)
	}
	files["img"] = img

	chunks := func(when string) map[string]int {
		t.Helper()
		got := map[string]int{}
		for _, r := range fileStrings(t, path, `SELECT attachment_id || ' ' || count(*) FROM attachment_chunks GROUP BY attachment_id`) {
			id, count, _ := strings.Cut(r, " ")
			n, err := strconv.Atoi(count)
			if err != nil {
				t.Fatal(err)
			}
			got[id] = n
		}
		if inline := fileStrings(t, path, `SELECT id FROM attachments WHERE length(data) > 0`); len(inline) != 0 {
			t.Fatalf("%s: attachments with their data inline: %v", when, inline)
		}
		return got
	}
	check := func(when string) {
		t.Helper()
		want := map[string]int{"big": 3, "exact": 1, "small": 1, "img": 2}
		got := chunks(when)
		for id, n := range want {
			if got[id] != n {
				t.Fatalf("%s: chunk rows %v, want %v", when, got, want)
			}
		}
		for id, data := range files {
			_, whole, err := db.AttachmentData(ctx, a.ID, id, false)
			if err != nil || !bytes.Equal(whole, data) {
				t.Fatalf("%s: AttachmentData(%s): %d bytes, %v; want its %d", when, id, len(whole), err, len(data))
			}
			// Reads at every kind of offset: inside a chunk, across one
			// boundary, across two, up to the end and past it.
			for _, r := range [][2]int{{0, 1}, {chunk - 3, 10}, {chunk - 1, chunk + 2}, {len(data) - 5, 5}, {len(data) - 5, 50}, {5, len(data)}} {
				off, n := r[0], r[1]
				if off < 0 || off >= len(data) {
					continue
				}
				p := make([]byte, n)
				got, err := db.ReadAttachment(ctx, a.ID, id, false, int64(off), p)
				want := data[off:min(len(data), off+n)]
				if got != len(want) || !bytes.Equal(p[:got], want) {
					t.Fatalf("%s: ReadAttachment(%s, %d, %d) = %d, %v; want %d bytes equal", when, id, off, n, got, err, len(want))
				}
				if wantErr := error(nil); len(want) < n {
					wantErr = io.EOF
					if err != wantErr {
						t.Fatalf("%s: ReadAttachment(%s, %d, %d): %v, want io.EOF", when, id, off, n, err)
					}
				} else if err != nil {
					t.Fatalf("%s: ReadAttachment(%s, %d, %d): %v", when, id, off, n, err)
				}
			}
		}
		p := make([]byte, 10)
		if n, err := db.ReadAttachment(ctx, a.ID, "img", true, chunk, p); n != 7 || err != io.EOF || !bytes.Equal(p[:7], img[chunk:]) {
			t.Fatalf("%s: the thumbnail read of an image stored without one: %d, %v", when, n, err)
		}
		stranger, err := db.CreateUser(ctx, "stranger-"+when[:3], nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ReadAttachment(ctx, stranger.ID, "big", false, 0, p); parley.ErrorCode(err) != parley.ENOTFOUND {
			t.Fatalf("%s: a stranger's read: %v, want not found", when, err)
		}
	}
	check("new")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Down: the bytes inline again, the table gone.
	if err := sqlite.MigrateDownTo(ctx, path, 22); err != nil {
		t.Fatal(err)
	}
	if got := fileStrings(t, path, `SELECT name FROM sqlite_master WHERE name LIKE 'attachment_chunks%'`); len(got) != 0 {
		t.Fatalf("at 00022: %v left", got)
	}
	for id, data := range files {
		c, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		var inline []byte
		err = c.QueryRow(`SELECT data FROM attachments WHERE id = $1`, id).Scan(&inline)
		c.Close()
		if err != nil || !bytes.Equal(inline, data) {
			t.Fatalf("at 00022: %s's data %d bytes, %v; want its %d inline", id, len(inline), err, len(data))
		}
	}

	// Up from a file with data inline (as every release before 00024
	// stored it): moved into chunks, equal.
	db = open(t, path)
	check("upgraded")

	// The orphan sweep (and any delete) takes the chunks along.
	if _, _, err := db.DeleteMessage(ctx, a.ID, conv.ID, messageIDOf(t, db, a.ID, conv.ID, "big")); err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteOrphanAttachments(ctx, parley.Now().Add(1e12), 100); err != nil {
		t.Fatal(err)
	}
	if got := chunks("after the sweep"); got["big"] != 0 || got["small"] != 1 {
		t.Fatalf("after the sweep: chunk rows %v, want big's gone and small's kept", got)
	}
}

// messageIDOf is the id of the message clientID in conversationID.
func messageIDOf(t *testing.T, db *sqlite.DB, userID, conversationID, clientID string) string {
	t.Helper()
	page, err := db.Messages(t.Context(), userID, conversationID, parley.MessageQuery{Limit: parley.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range page.Messages {
		if m.ClientID == clientID {
			return m.ID
		}
	}
	t.Fatalf("no message %s", clientID)
	return ""
}
