package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

func testSend(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "senda"), newUser(t, s, "sendb")
	conv := newDirect(t, s, a, b)
	for i := 1; i <= 3; i++ {
		nm := parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: clientID(), Type: parley.Text, Text: fmt.Sprint("m", i)}
		m, events, err := s.SendMessage(ctx(t), nm)
		if err != nil {
			t.Fatalf("SendMessage: %v", err)
		}
		if m.ID == "" || m.Seq != int64(i) || m.ConversationID != conv.ID || m.SenderID != a.ID ||
			m.SenderName != a.Name || m.ClientID != nm.ClientID || m.Type != parley.Text ||
			m.Text != nm.Text || m.CreatedAt.IsZero() || m.Deleted {
			t.Errorf("SendMessage = %+v", m)
		}
		e := oneEvent(t, "SendMessage", events, parley.EventNewMessage)
		if e.Message == nil || e.Message.ID != m.ID || e.ConversationID != conv.ID || e.UserID != a.ID ||
			e.UserName != a.Name || !sameSet(e.Audience, ids(a, b)) {
			t.Errorf("newMessage event = %+v", e)
		}
	}
	// Sending moves the sender's read position.
	got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID))
	if got.ReadSeq != 3 || got.UnreadCount != 0 || got.LastSeq != 3 {
		t.Errorf("sender's view = read %d unread %d last %d; want 3 0 3", got.ReadSeq, got.UnreadCount, got.LastSeq)
	}
	// Exactly MaxTextRunes multi-byte runes is accepted.
	long := strings.Repeat("é", parley.MaxTextRunes)
	if m := send(t, s, conv.ID, b, long); m.Text != long {
		t.Errorf("a %d-rune text came back changed", parley.MaxTextRunes)
	}
}

func testSendIdempotent(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "idema"), newUser(t, s, "idemb")
	conv := newDirect(t, s, a, b)
	nm := parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, ClientID: "same-id", Type: parley.Text, Text: "once"}
	first, events, err := s.SendMessage(ctx(t), nm)
	if err != nil || len(events) != 1 {
		t.Fatalf("first send: %d events, %v", len(events), err)
	}
	head := must[int64](t, "Head")(s.Head(ctx(t)))
	for range 3 {
		again, events, err := s.SendMessage(ctx(t), nm)
		if err != nil {
			t.Fatalf("resend: %v", err)
		}
		if !(again.ID == first.ID && again.Seq == first.Seq && again.CreatedAt.Equal(first.CreatedAt)) {
			t.Errorf("resend = %+v, want %+v", again, first)
		}
		if len(events) != 0 {
			t.Errorf("resend made %d events", len(events))
		}
	}
	if h := must[int64](t, "Head")(s.Head(ctx(t))); h != head {
		t.Errorf("Head after resends = %d, want %d", h, head)
	}
	// The same client id for another conversation is a conflict, not a
	// second message.
	other1 := newGroup(t, s, a, "other")
	_, events, err = s.SendMessage(ctx(t), parley.NewMessage{ConversationID: other1.ID, SenderID: a.ID, ClientID: "same-id", Type: parley.Text, Text: "elsewhere"})
	wantCode(t, "reusing a client id in another conversation", err, parley.ECONFLICT)
	if len(events) != 0 {
		t.Errorf("a refused resend made %d events", len(events))
	}
	// Another sender may use the same client id.
	nm.SenderID = b.ID
	other, events, err := s.SendMessage(ctx(t), nm)
	if err != nil || other.ID == first.ID || other.Seq != 2 || len(events) != 1 {
		t.Errorf("same client id, other sender = %+v, %d events, %v", other, len(events), err)
	}
	page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, conv.ID, parley.MessageQuery{}))
	if len(page.Messages) != 2 {
		t.Errorf("history holds %d messages, want 2", len(page.Messages))
	}
}

func testSendValidation(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "vala"), newUser(t, s, "valb")
	conv := newDirect(t, s, a, b)
	ok := parley.NewMessage{ConversationID: conv.ID, SenderID: a.ID, Type: parley.Text, Text: "x"}
	tests := []struct {
		name string
		edit func(m *parley.NewMessage)
		code string
	}{
		{"no client id", func(m *parley.NewMessage) { m.ClientID = "" }, parley.EINVALID},
		{"long client id", func(m *parley.NewMessage) { m.ClientID = strings.Repeat("c", parley.MaxClientIDLen+1) }, parley.EINVALID},
		{"empty text", func(m *parley.NewMessage) { m.Text = "" }, parley.EINVALID},
		{"blank text", func(m *parley.NewMessage) { m.Text = " \n\t " }, parley.EINVALID},
		{"long text", func(m *parley.NewMessage) { m.Text = strings.Repeat("é", parley.MaxTextRunes+1) }, parley.EINVALID},
		{"invalid UTF-8", func(m *parley.NewMessage) { m.Text = "bad \xff\xfe" }, parley.EINVALID},
		{"NUL in text", func(m *parley.NewMessage) { m.Text = "a\x00b" }, parley.EINVALID},
		{"NUL in client id", func(m *parley.NewMessage) { m.ClientID = "c\x00" }, parley.EINVALID},
		{"unknown type", func(m *parley.NewMessage) { m.Type = "video" }, parley.EINVALID},
		{"image without attachment", func(m *parley.NewMessage) { m.Type = parley.Image }, parley.EINVALID},
		{"image with someone else's attachment", func(m *parley.NewMessage) {
			m.Type, m.AttachmentID = parley.Image, "not-mine"
		}, parley.EINVALID},
		{"unknown conversation", func(m *parley.NewMessage) { m.ConversationID = "nope" }, parley.ENOTFOUND},
	}
	for _, tt := range tests {
		m := ok
		m.ClientID = clientID()
		tt.edit(&m)
		_, events, err := s.SendMessage(ctx(t), m)
		wantCode(t, tt.name, err, tt.code)
		if len(events) != 0 {
			t.Errorf("%s: %d events", tt.name, len(events))
		}
	}
	// Nothing was written.
	if got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), a.ID, conv.ID)); got.LastSeq != 0 {
		t.Errorf("LastSeq after refused sends = %d", got.LastSeq)
	}
	// A refused send does not burn its client id.
	m := ok
	m.ClientID = "retry-after-fix"
	m.Text = ""
	if _, _, err := s.SendMessage(ctx(t), m); err == nil {
		t.Fatal("empty text accepted")
	}
	m.Text = "fixed"
	if got, _, err := s.SendMessage(ctx(t), m); err != nil || got.Text != "fixed" {
		t.Errorf("send after a refused one with the same client id = %+v, %v", got, err)
	}
}

func testDelete(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "dela"), newUser(t, s, "delb")
	conv := newDirect(t, s, a, b)
	m1 := send(t, s, conv.ID, a, "keep")
	m2 := send(t, s, conv.ID, a, "secret")
	m3 := send(t, s, conv.ID, b, "b's")

	_, _, err := s.DeleteMessage(ctx(t), b.ID, conv.ID, m2.ID)
	wantCode(t, "deleting someone else's message", err, parley.EFORBIDDEN)
	_, _, err = s.DeleteMessage(ctx(t), a.ID, conv.ID, "nope")
	wantCode(t, "deleting an unknown message", err, parley.ENOTFOUND)

	tomb, events, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m2.ID)
	if err != nil {
		t.Fatalf("DeleteMessage: %v", err)
	}
	if !tomb.Deleted || tomb.DeletedAt == nil || tomb.Text != "" || tomb.ID != m2.ID || tomb.Seq != m2.Seq || tomb.SenderID != a.ID {
		t.Errorf("tombstone = %+v", tomb)
	}
	e := oneEvent(t, "DeleteMessage", events, parley.EventMessageDeleted)
	if e.Message == nil || !e.Message.Deleted || e.Message.Text != "" || e.UserID != a.ID || !sameSet(e.Audience, ids(a, b)) {
		t.Errorf("messageDeleted event = %+v", e)
	}
	again, events, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, m2.ID)
	if err != nil || !again.Deleted || len(events) != 0 {
		t.Errorf("deleting twice = %+v, %d events, %v", again, len(events), err)
	}

	// History keeps the tombstone in its place.
	page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, parley.MessageQuery{}))
	if !slices.Equal(seqs(page.Messages), []int64{1, 2, 3}) || !slices.Equal(texts(page.Messages), []string{"keep", "", "b's"}) ||
		!page.Messages[1].Deleted || page.Messages[0].Deleted || page.Messages[0].ID != m1.ID || page.Messages[2].ID != m3.ID {
		t.Errorf("history after delete = %+v", page.Messages)
	}
	// The replay of its newMessage carries the tombstone.
	for _, e := range allEventsFor(t, s, b.ID) {
		if e.Message != nil && e.Message.ID == m2.ID {
			if !e.Message.Deleted || e.Message.Text != "" {
				t.Errorf("replayed %s of a deleted message = %+v", e.Type, e.Message)
			}
		}
	}
	// A message id from another conversation is not found here.
	other := newGroup(t, s, a, "other")
	m4 := send(t, s, other.ID, a, "elsewhere")
	_, _, err = s.DeleteMessage(ctx(t), a.ID, conv.ID, m4.ID)
	wantCode(t, "deleting a message through another conversation", err, parley.ENOTFOUND)
}

func testMarkRead(t *testing.T, s parley.Store) {
	a, b, c := newUser(t, s, "reada"), newUser(t, s, "readb"), newUser(t, s, "readc")
	conv := newGroup(t, s, a, "G", b, c)
	for i := range 5 {
		send(t, s, conv.ID, a, fmt.Sprint("m", i))
	}
	events, err := s.MarkRead(ctx(t), b.ID, conv.ID, 3)
	if err != nil {
		t.Fatalf("MarkRead: %v", err)
	}
	e := oneEvent(t, "MarkRead", events, parley.EventMessageRead)
	if e.ReadSeq != 3 || e.UserID != b.ID || e.ConversationID != conv.ID || !sameSet(e.Audience, ids(a, b, c)) {
		t.Errorf("messageRead event = %+v", e)
	}
	// Backwards or in place: no events, no change.
	for _, seq := range []int64{2, 3, 0} {
		events, err := s.MarkRead(ctx(t), b.ID, conv.ID, seq)
		if err != nil || len(events) != 0 {
			t.Errorf("MarkRead(%d) after 3: %d events, %v", seq, len(events), err)
		}
	}
	// Past the end: clamped to the newest message.
	events, err = s.MarkRead(ctx(t), b.ID, conv.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if e := oneEvent(t, "MarkRead(1000)", events, parley.EventMessageRead); e.ReadSeq != 5 {
		t.Errorf("MarkRead(1000) read_seq = %d, want 5", e.ReadSeq)
	}
	if events, _ := s.MarkRead(ctx(t), b.ID, conv.ID, 1000); len(events) != 0 {
		t.Errorf("MarkRead(1000) again: %d events", len(events))
	}
	got := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID))
	if got.ReadSeq != 5 {
		t.Errorf("ReadSeq = %d, want 5", got.ReadSeq)
	}
	for _, m := range got.Members {
		if m.UserID == b.ID && m.ReadSeq != 5 {
			t.Errorf("member b ReadSeq = %d, want 5", m.ReadSeq)
		}
	}
	_, err = s.MarkRead(ctx(t), b.ID, conv.ID, -1)
	wantCode(t, "MarkRead(-1)", err, parley.EINVALID)
	// An empty conversation clamps to 0: no event.
	empty := newGroup(t, s, a, "empty", b)
	if events, err := s.MarkRead(ctx(t), b.ID, empty.ID, 7); err != nil || len(events) != 0 {
		t.Errorf("MarkRead in an empty conversation: %d events, %v", len(events), err)
	}
}

func testUnread(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "unra"), newUser(t, s, "unrb")
	conv := newGroup(t, s, a, "G", b)
	unread := func(u parley.User) int64 {
		t.Helper()
		return must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), u.ID, conv.ID)).UnreadCount
	}
	var fromA []parley.Message
	for i := range 4 {
		fromA = append(fromA, send(t, s, conv.ID, a, fmt.Sprint("a", i)))
	}
	if got := unread(b); got != 4 {
		t.Errorf("b unread = %d, want 4", got)
	}
	if got := unread(a); got != 0 {
		t.Errorf("a unread (own messages) = %d, want 0", got)
	}
	// Deleted messages do not count.
	if _, _, err := s.DeleteMessage(ctx(t), a.ID, conv.ID, fromA[3].ID); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 3 {
		t.Errorf("b unread after a delete = %d, want 3", got)
	}
	if _, err := s.MarkRead(ctx(t), b.ID, conv.ID, 2); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != 1 {
		t.Errorf("b unread after reading to 2 = %d, want 1", got)
	}
	// b replies: b's read position moves to its own message, so a's
	// messages before it count as read.
	send(t, s, conv.ID, b, "reply")
	if got := unread(b); got != 0 {
		t.Errorf("b unread after replying = %d, want 0", got)
	}
	if got := unread(a); got != 1 {
		t.Errorf("a unread = %d, want 1", got)
	}

	// The counts stop at parley.MaxUnreadCount: b, who has read
	// everything, gets one more than that from a, each mentioning b; the
	// list and the one conversation say MaxUnreadCount for both counts.
	texts := make([]string, parley.MaxUnreadCount+1)
	for i := range texts {
		texts[i] = fmt.Sprint("many ", i, " @", b.Name)
	}
	replyMany(t, s, conv.ID, a, texts...)
	one := must[parley.Conversation](t, "Conversation")(s.Conversation(ctx(t), b.ID, conv.ID))
	list := must[[]parley.Conversation](t, "Conversations")(s.Conversations(ctx(t), b.ID))
	if len(list) != 1 {
		t.Fatalf("b's list: %d conversations, want 1", len(list))
	}
	for _, cv := range []parley.Conversation{one, list[0]} {
		if cv.UnreadCount != parley.MaxUnreadCount || cv.UnreadMentions != parley.MaxUnreadCount {
			t.Errorf("b with %d unread, each a mention: unread %d, mentions %d; want %d for both",
				len(texts), cv.UnreadCount, cv.UnreadMentions, parley.MaxUnreadCount)
		}
	}
	// Read all but MaxUnreadCount-2 of them: below the cap the count is
	// exact again.
	if _, err := s.MarkRead(ctx(t), b.ID, conv.ID, one.LastSeq-parley.MaxUnreadCount+2); err != nil {
		t.Fatal(err)
	}
	if got := unread(b); got != parley.MaxUnreadCount-2 {
		t.Errorf("b unread after reading all but %d = %d", parley.MaxUnreadCount-2, got)
	}
}

func testMessages(t *testing.T, s parley.Store) {
	a, b := newUser(t, s, "pga"), newUser(t, s, "pgb")
	conv := newGroup(t, s, a, "G", b)
	empty := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), a.ID, conv.ID, parley.MessageQuery{}))
	if len(empty.Messages) != 0 || empty.HasMore || empty.Messages == nil {
		t.Errorf("empty history = %+v (want a non-nil empty slice)", empty)
	}
	const n = 120
	for i := 1; i <= n; i++ {
		send(t, s, conv.ID, a, fmt.Sprint(i))
	}
	span := func(from, to int64) []int64 {
		var out []int64
		for i := from; i <= to; i++ {
			out = append(out, i)
		}
		return out
	}
	tests := []struct {
		q       parley.MessageQuery
		want    []int64
		hasMore bool
	}{
		{parley.MessageQuery{}, span(n-parley.DefaultPageLimit+1, n), true},
		{parley.MessageQuery{Limit: 10}, span(111, 120), true},
		{parley.MessageQuery{Limit: 1000}, span(n-parley.MaxPageLimit+1, n), true},
		{parley.MessageQuery{Before: 11, Limit: 10}, span(1, 10), false},
		{parley.MessageQuery{Before: 12, Limit: 10}, span(2, 11), true},
		{parley.MessageQuery{Before: 1}, nil, false},
		{parley.MessageQuery{After: 110, Limit: 10}, span(111, 120), false},
		{parley.MessageQuery{After: 109, Limit: 10}, span(110, 119), true},
		{parley.MessageQuery{After: 120}, nil, false},
		{parley.MessageQuery{After: 0, Limit: 3, Before: 0}, span(118, 120), true},
		{parley.MessageQuery{After: 5, Before: 9}, span(6, 8), false},
		{parley.MessageQuery{After: 5, Before: 9, Limit: 2}, span(6, 7), true},
		// FromStart is the protocol's after: 0: the oldest page.
		{parley.MessageQuery{FromStart: true, Limit: 3}, span(1, 3), true},
		{parley.MessageQuery{FromStart: true, Before: 3}, span(1, 2), false},
		{parley.MessageQuery{FromStart: true, Limit: 1000}, span(1, parley.MaxPageLimit), true},
	}
	for _, tt := range tests {
		page, err := s.Messages(ctx(t), b.ID, conv.ID, tt.q)
		if err != nil {
			t.Errorf("Messages(%+v): %v", tt.q, err)
			continue
		}
		if got := seqs(page.Messages); !slices.Equal(got, tt.want) || page.HasMore != tt.hasMore {
			t.Errorf("Messages(%+v) = seqs %v has_more %v; want %v %v", tt.q, got, page.HasMore, tt.want, tt.hasMore)
		}
		// Nothing is hidden here, so a page with more is full and its
		// Next is its end in the query's direction.
		var next int64
		switch {
		case !tt.hasMore || len(tt.want) == 0:
		case tt.q.After > 0 || tt.q.FromStart:
			next = tt.want[len(tt.want)-1]
		default:
			next = tt.want[0]
		}
		if page.Next != next {
			t.Errorf("Messages(%+v).Next = %d, want %d", tt.q, page.Next, next)
		}
	}
	for _, q := range []parley.MessageQuery{{Limit: -1}, {Before: -1}, {After: -1}} {
		_, err := s.Messages(ctx(t), b.ID, conv.ID, q)
		wantCode(t, fmt.Sprintf("Messages(%+v)", q), err, parley.EINVALID)
	}

	// Walking back with Before reaches every message once.
	var all []int64
	page := must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID, parley.MessageQuery{Limit: 7}))
	for {
		all = append(seqs(page.Messages), all...)
		if !page.HasMore {
			break
		}
		page = must[parley.MessagePage](t, "Messages")(s.Messages(ctx(t), b.ID, conv.ID,
			parley.MessageQuery{Before: page.Next, Limit: 7}))
	}
	if !slices.Equal(all, span(1, n)) {
		t.Errorf("walking back = %v", all)
	}
}
