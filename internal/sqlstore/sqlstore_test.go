package sqlstore

import (
	"testing"

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
	if err := AttachmentRule(img, false); parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("an image of someone else's upload: %v, want invalid", err)
	}
	if err := AttachmentRule(img, true); err != nil {
		t.Errorf("an image of one's own upload: %v", err)
	}
	if err := AttachmentRule(parley.NewMessage{Type: parley.Text}, false); err != nil {
		t.Errorf("a text: %v", err)
	}
}
