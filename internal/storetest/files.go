package storetest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// testFiles: a file upload (an attachment with a name) keeps its name and
// type; only its owner may send it, only as a file message (and an image
// upload only as an image); the message carries name, size and type in
// the send's result, its newMessage event and history; its bytes follow
// the image rules (owner, then members of a conversation holding it; a
// non-member gets not found); a bad name is invalid.
func testFiles(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "filea"), newUser(t, s, "fileb"), newUser(t, s, "filec")
	conv := newDirect(t, s, a, b)
	data := []byte("%PDF-1.4 a report")
	file := parley.Attachment{ID: "file-1", ContentType: "application/pdf", Size: int64(len(data)), Name: "report é.pdf"}
	if err := s.PutAttachment(ctx(t), a.ID, file, data, nil, 0); err != nil {
		t.Fatalf("PutAttachment(file): %v", err)
	}
	img := parley.Attachment{ID: "file-img", ContentType: "image/png", Size: 4, Width: 1, Height: 1}
	if err := s.PutAttachment(ctx(t), a.ID, img, []byte("\x89PNG"), []byte("t"), 0); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []parley.Attachment{
		{ID: "file-long", ContentType: "text/plain", Name: strings.Repeat("x", parley.MaxFileNameBytes+1)},
		{ID: "file-utf8", ContentType: "text/plain", Name: "a\xffb"},
		{ID: "file-wh", ContentType: "text/plain", Name: "a.txt", Width: 2, Height: 2},
	} {
		wantCode(t, "PutAttachment "+bad.ID, s.PutAttachment(ctx(t), a.ID, bad, data, nil, 0), parley.EINVALID)
	}

	send := func(from parley.User, typ parley.MessageType, id string) (parley.Message, []parley.Event, error) {
		return s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: from.ID, ClientID: clientID(),
			Type: typ, AttachmentID: id, Text: "see attached"})
	}
	_, _, err := send(b, parley.File, file.ID)
	wantCode(t, "sending another user's file", err, parley.EINVALID)
	_, _, err = send(a, parley.Image, file.ID)
	wantCode(t, "a file upload sent as an image", err, parley.EINVALID)
	_, _, err = send(a, parley.File, img.ID)
	wantCode(t, "an image upload sent as a file", err, parley.EINVALID)
	_, _, err = send(c, parley.File, file.ID)
	wantCode(t, "a non-member sending a file", err, parley.ENOTFOUND)

	m, events, err := send(a, parley.File, file.ID)
	if err != nil {
		t.Fatalf("sending a file: %v", err)
	}
	wantFile := func(what string, m *parley.Message) {
		t.Helper()
		if m == nil || m.Type != parley.File || m.Attachment == nil {
			t.Fatalf("%s: %+v, want a file message", what, m)
		}
		if got := *m.Attachment; got.ID != file.ID || got.Name != file.Name || got.Size != file.Size ||
			got.ContentType != file.ContentType || got.Width != 0 || got.Height != 0 {
			t.Errorf("%s: attachment %+v, want %+v", what, got, file)
		}
	}
	wantFile("SendMessage", &m)
	wantFile("newMessage", oneEvent(t, "file send", events, parley.EventNewMessage).Message)
	page, err := s.Messages(ctx(t), b.ID, conv.ID, parley.MessageQuery{Limit: 10})
	if err != nil || len(page.Messages) != 1 {
		t.Fatalf("history: %+v, %v", page, err)
	}
	wantFile("history", &page.Messages[0])
	evs, err := s.EventsFor(ctx(t), b.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	replayed := false
	for _, e := range evs.Events {
		if e.Type == parley.EventNewMessage && e.Message != nil && e.Message.ID == m.ID {
			wantFile("replayed newMessage", e.Message)
			replayed = true
		}
	}
	if !replayed {
		t.Errorf("EventsFor(b) has no newMessage for the file: %+v", evs)
	}

	got, b2, err := attachmentData(t, s, b.ID, file.ID, false)
	if err != nil || !bytes.Equal(b2, data) || got.Name != file.Name || got.ContentType != file.ContentType {
		t.Errorf("member's AttachmentData = %+v %q, %v", got, b2, err)
	}
	if _, _, err := attachmentData(t, s, c.ID, file.ID, false); !isNotFound(err) {
		t.Errorf("non-member's AttachmentData: %v, want not found", err)
	}
	// A file has no thumbnail: its thumb variant is the attachment and no
	// bytes, so a signed link's access check (which asks for the thumb,
	// an image's small variant) does not read a file of up to 25 MiB.
	// Before, it returned the whole file.
	got, b2, err = attachmentData(t, s, b.ID, file.ID, true)
	if err != nil || b2 != nil || got.Name != file.Name || got.Size != int64(len(data)) {
		t.Errorf("member's AttachmentData(thumb) of a file = %+v, %d bytes, %v; want the attachment and no bytes", got, len(b2), err)
	}
}
