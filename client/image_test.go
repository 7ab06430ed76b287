package client_test

import (
	"bytes"
	"context"
	"database/sql"
	"image"
	"image/color"
	"image/png"
	"path/filepath"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/server"
)

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 40, 30))
	for x := range 40 {
		img.Set(x, x%30, color.RGBA{200, 10, 10, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestSendImage: the optimistic flow for an image (local preview, Sending,
// then Sent with the server's attachment); the other member gets it.
func TestSendImage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, alice, bob, cv := twoInGroup(t, "alice")
		ctx := context.Background()
		rec := record(bob)
		data := pngBytes(t)
		m, err := alice.SendImage(ctx, cv.ID, bytes.NewReader(data), client.WithCaption("a red line"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Status() != client.Sending || !bytes.Equal(m.Image(), data) || m.Type() != parley.Image || m.Text() != "a red line" {
			t.Fatalf("optimistic message: %v %d bytes %v %q", m.Status(), len(m.Image()), m.Type(), m.Text())
		}
		got, err := m.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Type != parley.Image || got.Attachment == nil || got.Attachment.Width != 40 || got.Attachment.Height != 30 || got.Text != "a red line" {
			t.Fatalf("stored %+v", got)
		}
		synctest.Wait()
		msgs := rec.messages()[cv.ID]
		if len(msgs) != 1 || msgs[0].Attachment == nil || msgs[0].Attachment.ID != got.Attachment.ID {
			t.Fatalf("bob got %+v", msgs)
		}
	})
}

// TestSendImageUploadInterrupted: the link dies while the image is being
// uploaded; the client uploads again on the next connection and the
// conversation holds exactly one message, after the text sent before it
// and before the one sent after it.
func TestSendImageUploadInterrupted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice, cv := aliceInGroup(t)
		ctx := context.Background()
		first, _ := alice.Send(ctx, cv.ID, "before")
		if _, err := first.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		b.proxy.Blackhole(faultproxy.Upstream)
		m, err := alice.SendImage(ctx, cv.ID, bytes.NewReader(pngBytes(t)))
		if err != nil {
			t.Fatal(err)
		}
		after, _ := alice.Send(ctx, cv.ID, "after")
		synctest.Wait() // the upload hangs: its bytes go nowhere
		if m.Status() != client.Sending {
			t.Fatalf("status %v while the upload hangs", m.Status())
		}
		b.proxy.CutAll()
		b.proxy.Heal()
		if _, err := m.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := after.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		page, err := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, pm := range page.Messages {
			kinds = append(kinds, string(pm.Type)+":"+pm.Text)
		}
		if len(page.Messages) != 3 || page.Messages[1].Type != parley.Image || page.Messages[1].ClientID != m.ClientID() ||
			page.Messages[0].Text != "before" || page.Messages[2].Text != "after" {
			t.Fatalf("stored %v, want before, the image once, after", kinds)
		}
	})
}

// TestSendImageRefused: a file that is not an image ends Failed with the
// server's reason; Resend of it fails again the same way.
func TestSendImageRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, alice, cv := aliceInGroup(t)
		ctx := context.Background()
		m, err := alice.SendImage(ctx, cv.ID, bytes.NewReader([]byte("just some text, named cat.png")))
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Wait(ctx)
		if m.Status() != client.Failed || parley.ErrorCode(err) != parley.EUNSUPPORTED || parley.ErrorCode(m.Err()) != parley.EUNSUPPORTED {
			t.Fatalf("status %v, err %v; want failed with unsupported", m.Status(), err)
		}
		if err := alice.Resend(ctx, m); err != nil {
			t.Fatal(err)
		}
		if _, err := m.Wait(ctx); parley.ErrorCode(err) != parley.EUNSUPPORTED {
			t.Fatalf("resend: %v", err)
		}
		page, _ := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if len(page.Messages) != 0 {
			t.Fatalf("stored %d messages", len(page.Messages))
		}
		if len(alice.Pending()) != 0 {
			t.Fatal("the outbox still holds the refused image")
		}
	})
}

// TestSendImageKeepsAttachmentAcrossRestart: the upload succeeded but the
// send did not (rate-limited, then the app closed); the durable outbox
// keeps the attachment id, so a new client on the same file sends the
// message without uploading again: one attachment, one message.
func TestSendImageKeepsAttachmentAcrossRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBubble(t, func(c *server.Config) {
			c.Limits.MessagesPerSecond, c.Limits.MessageBurst = 0.01, 1 // one send per 100 s
		})
		device, c1 := b.device("alice")
		ctx := context.Background()
		cv := mustGroup(t, c1)
		first, _ := c1.Send(ctx, cv.ID, "uses the burst")
		if _, err := first.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		m, err := c1.SendImage(ctx, cv.ID, bytes.NewReader(pngBytes(t)))
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // uploaded; the send waits out rate_limited
		if m.Status() != client.Sending {
			t.Fatalf("status %v", m.Status())
		}
		if n := countRows(t, filepath.Join(b.dir, "parley.db"), "attachments"); n != 1 {
			t.Fatalf("%d attachments stored after the upload, want 1", n)
		}
		if err := c1.Close(); err != nil {
			t.Fatal(err)
		}
		c2 := device()
		p := c2.Pending()
		if len(p) != 1 || p[0].ClientID() != m.ClientID() || p[0].Type() != parley.Image {
			t.Fatalf("reopened outbox %d", len(p))
		}
		if err := c2.Connect(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := p[0].Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.Attachment == nil {
			t.Fatalf("stored %+v", got)
		}
		if n := countRows(t, filepath.Join(b.dir, "parley.db"), "attachments"); n != 1 {
			t.Fatalf("%d attachments stored, want 1: the image was uploaded again", n)
		}
		page, _ := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if len(page.Messages) != 2 || page.Messages[1].ClientID != m.ClientID() {
			t.Fatalf("stored %d messages", len(page.Messages))
		}
	})
}

// countRows counts a table's rows in a SQLite file (read-only).
func countRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
