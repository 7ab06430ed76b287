package sqlstore

import (
	"testing"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/parleychat/parley"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSendRule: the rule every engine's send path keeps (the engines'
// storetest runs check it end to end).
func TestSendRule(t *testing.T) {
	here, there := "c1", "c2"
	nm := parley.NewMessage{ConversationID: here, SenderID: "u", ClientID: "k", Type: parley.Text, Text: "hi"}
	for _, c := range []struct {
		name       string
		member     bool
		oldConv    *string
		wantResend bool
		wantCode   string
	}{
		{"not a member", false, nil, false, parley.ENOTFOUND},
		{"not a member, client id used", false, &here, false, parley.ENOTFOUND},
		{"new", true, nil, false, ""},
		{"resend", true, &here, true, ""},
		{"client id used elsewhere", true, &there, false, parley.ECONFLICT},
	} {
		resend, err := SendRule(nm, c.member, c.oldConv)
		if resend != c.wantResend || parley.ErrorCode(err) != c.wantCode {
			t.Errorf("%s: resend %v, error %v; want %v, code %q", c.name, resend, err, c.wantResend, c.wantCode)
		}
	}
}

func TestAttachmentRule(t *testing.T) {
	img := parley.NewMessage{Type: parley.Image, AttachmentID: "a"}
	file := parley.NewMessage{Type: parley.File, AttachmentID: "a"}
	for _, c := range []struct {
		name  string
		nm    parley.NewMessage
		owned bool
		att   string // the upload's name: "" an image upload
		want  string
	}{
		{"an image of someone else's upload", img, false, "", parley.EINVALID},
		{"an image of one's own upload", img, true, "", ""},
		{"an image naming a file upload", img, true, "a.txt", parley.EINVALID},
		{"a file of someone else's upload", file, false, "a.txt", parley.EINVALID},
		{"a file of one's own upload", file, true, "a.txt", ""},
		{"a file naming an image upload", file, true, "", parley.EINVALID},
		{"a text", parley.NewMessage{Type: parley.Text}, false, "", ""},
	} {
		if err := AttachmentRule(c.nm, c.owned, c.att); parley.ErrorCode(err) != c.want {
			t.Errorf("%s: %v, want code %q", c.name, err, c.want)
		}
	}
}

// TestNilErrorsAllocateNothing: WrapInternal and parley.ErrorCode run for
// every op a store answers, nearly always with a nil error; they allocate
// nothing for it (each allocated the *parley.Error errors.As fills).
func TestNilErrorsAllocateNothing(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() {
		if WrapInternal("x", nil) != nil || parley.ErrorCode(nil) != "" {
			t.Fatal("not nil")
		}
	}); n != 0 {
		t.Errorf("%v allocations for a nil error", n)
	}
}

// TestNewIDAllocs: an id costs one allocation, its string (the random
// bits come from uuid's pool, see init), and ids are distinct UUIDv7s
// in creation order.
func TestNewIDAllocs(t *testing.T) {
	if n := testing.AllocsPerRun(1000, func() { _ = NewID() }); n > 1 {
		t.Errorf("NewID: %v allocations, want 1", n)
	}
	prev := ""
	for range 1000 {
		id := NewID()
		u, err := uuid.Parse(id)
		if err != nil || u.Version() != 7 || id <= prev {
			t.Fatalf("NewID %q after %q: version %v, %v", id, prev, u.Version(), err)
		}
		prev = id
	}
}
