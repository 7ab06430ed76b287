package storetest

import (
	"testing"

	"github.com/parleychat/parley"
)

// attachmentData is s.AttachmentData for userID, checking on the way that
// s.AttachmentInfo agrees with it: the same attachment and the length of
// the same bytes to the same users, the same error code to anyone else.
// Every access rule the suite checks on AttachmentData (owner, members,
// outsiders, deleted messages, avatars, unknown ids) is so checked on
// AttachmentInfo, which the server asks first: a download is budgeted by
// it, and an outsider must learn nothing there either.
func attachmentData(t *testing.T, s parley.Store, userID, attachmentID string, thumb bool) (parley.Attachment, []byte, error) {
	t.Helper()
	info, n, ierr := s.AttachmentInfo(ctx(t), userID, attachmentID, thumb)
	a, data, err := s.AttachmentData(ctx(t), userID, attachmentID, thumb)
	switch {
	case parley.ErrorCode(ierr) != parley.ErrorCode(err) || (ierr == nil) != (err == nil):
		t.Errorf("AttachmentInfo(%s, %s, thumb %v): %v; AttachmentData: %v", userID, attachmentID, thumb, ierr, err)
	case err == nil && (info != a || n != int64(len(data))):
		t.Errorf("AttachmentInfo(%s, %s, thumb %v) = %+v, %d bytes; AttachmentData %+v, %d bytes",
			userID, attachmentID, thumb, info, n, a, len(data))
	}
	return a, data, err
}

// testAttachmentInfo: AttachmentInfo gives the length of each variant's
// bytes without them: an image's data and thumbnail, the data of an image
// stored without a thumbnail, none of a file's thumbnail.
func testAttachmentInfo(t *testing.T, s parley.Store) {
	a := newUser(t, s, "infoa")
	put := func(at parley.Attachment, data, thumb []byte) {
		t.Helper()
		if err := s.PutAttachment(ctx(t), a.ID, at, data, thumb, 0); err != nil {
			t.Fatalf("PutAttachment(%s): %v", at.ID, err)
		}
	}
	put(parley.Attachment{ID: "info-img", ContentType: "image/png", Width: 2, Height: 2}, make([]byte, 1000), make([]byte, 30))
	put(parley.Attachment{ID: "info-nothumb", ContentType: "image/png", Width: 1, Height: 1}, make([]byte, 70), nil)
	put(parley.Attachment{ID: "info-file", ContentType: "application/pdf", Name: "a.pdf"}, make([]byte, 4000), nil)
	for _, tt := range []struct {
		id    string
		thumb bool
		want  int64
	}{
		{"info-img", false, 1000},
		{"info-img", true, 30},
		{"info-nothumb", false, 70},
		{"info-nothumb", true, 70},
		{"info-file", false, 4000},
		{"info-file", true, 0},
	} {
		got, n, err := s.AttachmentInfo(ctx(t), a.ID, tt.id, tt.thumb)
		if err != nil || got.ID != tt.id || n != tt.want {
			t.Errorf("AttachmentInfo(%s, thumb %v) = %+v, %d, %v; want %d bytes", tt.id, tt.thumb, got, n, err, tt.want)
		}
		attachmentData(t, s, a.ID, tt.id, tt.thumb)
	}
	if _, _, err := s.AttachmentInfo(ctx(t), a.ID, "info-none", false); !isNotFound(err) {
		t.Errorf("AttachmentInfo of an unknown id: %v, want not found", err)
	}
}
