package client_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
)

// TestSendFile: SendFile uploads a file from a path and sends a file
// message; the stored message and bob's copy carry the name, size and
// sniffed type; the SDK keeps the name on the optimistic message.
func TestSendFile(t *testing.T) {
	bubbleTest(t, func(t *testing.T, b *bubble, ctx context.Context) {
		alice, bob := alicebob(t, b)
		cv := mustGroup(t, alice, "bob")
		rec := record(bob)
		data := []byte("%PDF-1.7\nnot much of a report\n")
		path := filepath.Join(t.TempDir(), "résumé.pdf")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		m, err := alice.SendFile(ctx, cv.ID, path, client.WithCaption("my CV"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Type() != parley.File || m.FileName() != "résumé.pdf" || m.Status() != client.Sending || !bytes.Equal(m.Image(), data) {
			t.Fatalf("optimistic file message: %v %q %v", m.Type(), m.FileName(), m.Status())
		}
		got, err := m.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := parley.Attachment{Name: "résumé.pdf", Size: int64(len(data)), ContentType: "application/pdf"}
		wantFile := func(what string, m parley.Message) {
			t.Helper()
			a := m.Attachment
			if m.Type != parley.File || m.Text != "my CV" || a == nil || a.Name != want.Name || a.Size != want.Size ||
				a.ContentType != want.ContentType || a.URL == "" || a.ThumbURL != "" {
				t.Fatalf("%s: %+v (attachment %+v)", what, m, a)
			}
		}
		wantFile("stored", got)
		synctest.Wait()
		msgs := rec.messages()[cv.ID]
		if len(msgs) != 1 {
			t.Fatalf("bob got %d messages", len(msgs))
		}
		wantFile("bob's", msgs[0])
	})
}

// TestSendFileRefused: a file over the server's limit ends Failed with
// too_large and nothing is stored; an empty one is refused at once.
func TestSendFileRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) { c.Uploads.MaxFileBytes = 16 })
		alice := bubbleUsers(t, b, "alice")[0]
		ctx := context.Background()
		cv := mustGroup(t, alice)
		if _, err := alice.SendFileReader(ctx, cv.ID, "empty.txt", strings.NewReader("")); parley.ErrorCode(err) != parley.EINVALID {
			t.Fatalf("empty file: %v, want invalid", err)
		}
		m, err := alice.SendFileReader(ctx, cv.ID, "big.txt", strings.NewReader(strings.Repeat("x", 17)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(ctx); m.Status() != client.Failed || parley.ErrorCode(err) != parley.ETOOLARGE {
			t.Fatalf("status %v, err %v; want failed with too_large", m.Status(), err)
		}
		if n := countRows(t, filepath.Join(b.dir, "parley.db"), "attachments"); n != 0 {
			t.Fatalf("%d attachments stored", n)
		}
	})
}

// TestSendFileDurableOutbox: a file whose upload waits (the upload rate
// is spent) when the app closes survives in the durable outbox with its
// bytes and name, and the next client uploads and sends it as named.
func TestSendFileDurableOutbox(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) { c.Uploads.PerSecond, c.Uploads.Burst = 0.01, 1 })
		device, c1 := b.device("alice")
		ctx := context.Background()
		cv := mustGroup(t, c1)
		first, _ := c1.SendFileReader(ctx, cv.ID, "first.txt", strings.NewReader("uses the burst"))
		if _, err := first.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		m, err := c1.SendFileReader(ctx, cv.ID, "notes.txt", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the upload waits out rate_limited
		if m.Status() != client.Sending {
			t.Fatalf("status %v", m.Status())
		}
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}
		c2 := device()
		p := c2.Pending()
		if len(p) != 1 || p[0].Type() != parley.File || p[0].FileName() != "notes.txt" || string(p[0].Image()) != "hello" {
			t.Fatalf("reopened outbox: %d messages", len(p))
		}
		if err := c2.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := p[0].Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Attachment == nil || got.Attachment.Name != "notes.txt" || got.Attachment.Size != 5 {
			t.Fatalf("stored %+v", got)
		}
	})
}
