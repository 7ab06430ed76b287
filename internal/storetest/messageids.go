package storetest

import (
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// testMalformedMessageIDs: every operation that takes a message id answers
// for a string that is not one as for an id it does not hold (not found,
// or invalid for a reply's parent), whatever its form: a message id is a
// UUID in its canonical form, and other spellings of it (upper case,
// braces, no hyphens) name no message. In a bulk send only the send
// replying to such an id fails, and nothing is written for any of them.
// (Written by h-uuid for uuid columns, which would parse those spellings;
// kept with the stores' text ids as the contract any change of column
// type must keep.)
func testMalformedMessageIDs(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "mida"), newUser(t, s, "midb")
	conv := newGroup(t, s, a, "malformed ids", b)
	m := send(t, s, conv.ID, a, "hello @"+b.Name)
	ms := optional[parley.MultiSender](t, s)
	ks := optional[parley.APIKeyStore](t, s)
	bad := map[string]string{
		"not a uuid":     "no-such-message",
		"upper case":     strings.ToUpper(m.ID),
		"braces":         "{" + m.ID + "}",
		"no hyphens":     strings.ReplaceAll(m.ID, "-", ""),
		"urn":            "urn:uuid:" + m.ID,
		"a space":        " " + m.ID,
		"too long":       m.ID + "0",
		"unicode":        "é" + m.ID[2:],
		"a missing uuid": "00000000-0000-7000-8000-000000000000",
	}
	for what, id := range bad {
		t.Run(what, func(t *testing.T) {
			_, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, id)
			wantCode(t, "DeleteMessage", err, parley.ENOTFOUND)
			_, _, err = ks.ModerateMessage(ctx(t), conv.ID, id)
			wantCode(t, "ModerateMessage", err, parley.ENOTFOUND)
			_, _, err = s.EditMessage(ctx(t), parley.MessageEdit{UserID: a.ID, ConversationID: conv.ID, MessageID: id, ClientID: clientID(), Text: "x"})
			wantCode(t, "EditMessage", err, parley.ENOTFOUND)
			for _, add := range []bool{true, false} {
				_, _, err = s.React(ctx(t), b.ID, conv.ID, id, "👍", add)
				wantCode(t, "React", err, parley.ENOTFOUND)
			}
			_, _, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Text: "re", ReplyTo: id})
			wantCode(t, "SendMessage's reply_to", err, parley.EINVALID)
			// In one SendMessages (the engines' bulk path), between two
			// good sends: only the reply fails.
			nms := []parley.NewMessage{
				{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Text: "before"},
				{ConversationID: conv.ID, SenderID: b.ID, ClientID: clientID(), Text: "re", ReplyTo: id},
				{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Text: "after", ReplyTo: m.ID},
			}
			res := sendMany(t, ctx(t), ms, nms)
			if res[0].err != nil || res[2].err != nil || res[2].m.ReplyTo == nil || res[2].m.ReplyTo.MessageID != m.ID {
				t.Errorf("the good sends around a reply to %q: %v, %v (quote %+v)", id, res[0].err, res[2].err, res[2].m.ReplyTo)
			}
			wantCode(t, "SendMessages' reply_to", res[1].err, parley.EINVALID)
		})
	}
	// The message is untouched by all of it.
	if got := messageByID(t, s, a, conv.ID, m.ID); got.Deleted || got.Text != m.Text || got.EditedAt != nil {
		t.Errorf("the message after every malformed id = %+v", got)
	}
}
