package client_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
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
		if n := servertest.StoredAttachments(t, b.dir); n != 1 {
			t.Fatalf("%d attachments stored after the upload, want 1", n)
		}
		got := reopenOutbox(t, c1, device, func(p *client.Message) bool {
			return p.ClientID() == m.ClientID() && p.Type() == parley.Image
		})
		if got.Attachment == nil {
			t.Fatalf("stored %+v", got)
		}
		if n := servertest.StoredAttachments(t, b.dir); n != 1 {
			t.Fatalf("%d attachments stored, want 1: the image was uploaded again", n)
		}
		page, _ := b.store.Messages(ctx, "alice", cv.ID, parley.MessageQuery{})
		if len(page.Messages) != 2 || page.Messages[1].ClientID != m.ClientID() {
			t.Fatalf("stored %d messages", len(page.Messages))
		}
	})
}

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
		if n := servertest.StoredAttachments(t, b.dir); n != 0 {
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
		got := reopenOutbox(t, c1, device, func(p *client.Message) bool {
			return p.Type() == parley.File && p.FileName() == "notes.txt" && string(p.Image()) == "hello"
		})
		if got.Attachment == nil || got.Attachment.Name != "notes.txt" || got.Attachment.Size != 5 {
			t.Fatalf("stored %+v", got)
		}
	})
}

// reopenOutbox closes c, opens a new client on the same outbox file with
// device, checks that the outbox holds one message and that it is the one
// want recognises, connects, and returns that message as the server
// stored it.
func reopenOutbox(t *testing.T, c *client.Client, device func() *client.Client, want func(*client.Message) bool) parley.Message {
	t.Helper()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c2 := device()
	p := c2.Pending()
	if len(p) != 1 || !want(p[0]) {
		t.Fatalf("reopened outbox: %d messages, or not the one queued", len(p))
	}
	ctx := context.Background()
	if err := c2.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := p[0].Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
