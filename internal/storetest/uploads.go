package storetest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// putUpload stores an attachment of n data bytes and a 10-byte thumbnail
// for owner, under quota.
func putUpload(t *testing.T, s parley.Store, owner parley.User, id string, n int, quota int64) error {
	t.Helper()
	a := parley.Attachment{ID: id, ContentType: "image/png", Width: 1, Height: 1}
	return s.PutAttachment(ctx(t), owner.ID, a, make([]byte, n), make([]byte, 10), quota)
}

func wantUsage(t *testing.T, s parley.Store, u parley.User, want int64) {
	t.Helper()
	if got, err := s.UploadUsage(ctx(t), u.ID); err != nil || got != want {
		t.Fatalf("UploadUsage(%s) = %d, %v; want %d", u.Name, got, err, want)
	}
}

// testUploadQuota: PutAttachment refuses with ETOOLARGE an upload that
// would take its owner over quota, counting data and thumbnails, and the
// check holds for concurrent uploads.
func testUploadQuota(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "quotaa"), newUser(t, s, "quotab")
	wantUsage(t, s, a, 0)
	for i := range 2 {
		if err := putUpload(t, s, a, fmt.Sprintf("q-%d", i), 100, 250); err != nil {
			t.Fatalf("upload %d under quota: %v", i, err)
		}
	}
	wantUsage(t, s, a, 220)
	wantCode(t, "upload over quota", putUpload(t, s, a, "q-over", 100, 250), parley.ETOOLARGE)
	wantUsage(t, s, a, 220)
	if err := putUpload(t, s, a, "q-nolimit", 100, 0); err != nil {
		t.Fatalf("upload with no quota: %v", err)
	}
	wantUsage(t, s, a, 330)
	// Another user's quota is their own.
	if err := putUpload(t, s, b, "q-b", 100, 250); err != nil {
		t.Fatalf("b's upload: %v", err)
	}
	wantUsage(t, s, b, 110)

	// Concurrent uploads share one quota: 110 bytes each under 450, so
	// exactly four are stored.
	c := newUser(t, s, "quotac")
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { errs[i] = putUpload(t, s, c, fmt.Sprintf("qc-%d", i), 100, 450) })
	}
	wg.Wait()
	stored := 0
	for _, err := range errs {
		switch parley.ErrorCode(err) {
		case "":
			stored++
		case parley.ETOOLARGE:
		default:
			t.Fatalf("concurrent upload: %v", err)
		}
	}
	if stored != 4 {
		t.Errorf("%d concurrent uploads stored under a quota for 4", stored)
	}
	wantUsage(t, s, c, 440)
}

// testOrphanAttachments: DeleteOrphanAttachments deletes old attachments
// that no message holds, at most limit at a time, and keeps sent ones
// until their messages are deleted.
func testOrphanAttachments(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "orpha"), newUser(t, s, "orphb")
	conv := newDirect(t, s, a, b)
	for _, id := range []string{"o-sent", "o-1", "o-2"} {
		if err := putUpload(t, s, a, id, 100, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := putUpload(t, s, b, "o-b", 100, 0); err != nil {
		t.Fatal(err)
	}
	m, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Image, AttachmentID: "o-sent"})
	if err != nil {
		t.Fatal(err)
	}
	sweep := func(before time.Time, limit, want int) {
		t.Helper()
		if n, err := s.DeleteOrphanAttachments(ctx(t), before, limit); err != nil || n != want {
			t.Fatalf("DeleteOrphanAttachments(limit %d) = %d, %v; want %d", limit, n, err, want)
		}
	}
	// Younger than the cut: kept.
	sweep(parley.Now().Add(-time.Hour), 100, 0)
	later := parley.Now().Add(time.Second)
	sweep(later, 2, 2)
	sweep(later, 100, 1)
	sweep(later, 100, 0)
	for _, id := range []string{"o-1", "o-2"} {
		if _, _, err := attachmentData(t, s, a.ID, id, false); !isNotFound(err) {
			t.Errorf("orphan %s after the sweep: %v, want not found", id, err)
		}
	}
	if _, _, err := attachmentData(t, s, b.ID, "o-sent", true); err != nil {
		t.Errorf("the sent attachment after the sweep: %v", err)
	}
	wantUsage(t, s, a, 110)
	wantUsage(t, s, b, 0)
	// A deleted orphan cannot be sent.
	_, _, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Image, AttachmentID: "o-1"})
	wantCode(t, "sending a deleted orphan", err, parley.EINVALID)

	// Once its only message is deleted, the sent attachment is an orphan.
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m.ID); err != nil {
		t.Fatal(err)
	}
	sweep(parley.Now().Add(time.Second), 100, 1)
	wantUsage(t, s, a, 0)
	_, err = s.DeleteOrphanAttachments(ctx(t), later, 0)
	wantCode(t, "DeleteOrphanAttachments(limit 0)", err, parley.EINVALID)
}
