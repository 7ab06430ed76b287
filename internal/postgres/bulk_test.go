package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// These tests drive the bulk path of sends (bulk.go): many sends released
// at once so they share batches. What they assert holds however the sends
// fall into batches.

func openBulk(t *testing.T) *DB {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// userAndGroup creates the user name and a group of theirs, g.
func userAndGroup(t *testing.T, db *DB, name string) (parley.User, parley.Conversation) {
	t.Helper()
	u, err := db.CreateUser(t.Context(), name, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := db.CreateGroup(t.Context(), u.ID, "g", nil)
	if err != nil {
		t.Fatal(err)
	}
	return u, g
}

// burst runs fns at once and waits for them.
func burst(fns ...func()) {
	var start, wg sync.WaitGroup
	start.Add(1)
	for _, fn := range fns {
		wg.Go(func() { start.Wait(); fn() })
	}
	start.Done()
	wg.Wait()
}

type result struct {
	msg    parley.Message
	events []parley.Event
	err    error
}

// TestBulkMixed: in one burst, the same send ten times over, sends by a
// non-member, a client id reused in another conversation, an image with
// someone else's upload, and plain sends. Each gets the answer it would
// get alone.
func TestBulkMixed(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	must := func(u parley.User, err error) parley.User {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ann, bob, eve := must(db.CreateUser(ctx, "ann", nil)), must(db.CreateUser(ctx, "bob", nil)), must(db.CreateUser(ctx, "eve", nil))
	g1, _, err := db.CreateGroup(ctx, ann.ID, "one", []string{bob.ID})
	if err != nil {
		t.Fatal(err)
	}
	g2, _, err := db.CreateGroup(ctx, ann.ID, "two", []string{bob.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutAttachment(ctx, eve.ID, parley.Attachment{ID: "eve-pic", ContentType: "image/png", Width: 1, Height: 1}, []byte("png"), nil, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: g2.ID, SenderID: ann.ID, ClientID: "used-in-g2", Type: parley.Text, Text: "first"}); err != nil {
		t.Fatal(err)
	}

	send := func(nm parley.NewMessage) func() result {
		return func() result {
			m, e, err := db.SendMessage(ctx, nm)
			return result{m, e, err}
		}
	}
	type job struct {
		name string
		fn   func() result
		out  result
	}
	var jobs []*job
	add := func(name string, n int, fn func() result) {
		for range n {
			jobs = append(jobs, &job{name: name, fn: fn})
		}
	}
	add("same", 10, send(parley.NewMessage{ConversationID: g1.ID, SenderID: bob.ID, ClientID: "same", Type: parley.Text, Text: "once"}))
	add("stranger", 3, send(parley.NewMessage{ConversationID: g1.ID, SenderID: eve.ID, ClientID: "e", Type: parley.Text, Text: "hi"}))
	add("conflict", 3, send(parley.NewMessage{ConversationID: g1.ID, SenderID: ann.ID, ClientID: "used-in-g2", Type: parley.Text, Text: "x"}))
	add("not-mine", 3, send(parley.NewMessage{ConversationID: g1.ID, SenderID: ann.ID, ClientID: "pic", Type: parley.Image, AttachmentID: "eve-pic"}))
	for i := range 20 {
		add("plain", 1, send(parley.NewMessage{ConversationID: []string{g1.ID, g2.ID}[i%2], SenderID: ann.ID,
			ClientID: fmt.Sprint("plain-", i), Type: parley.Text, Text: fmt.Sprint(i)}))
	}
	fns := make([]func(), len(jobs))
	for i, j := range jobs {
		fns[i] = func() { j.out = j.fn() }
	}
	burst(fns...)

	var sameID string
	sameEvents := 0
	for _, j := range jobs {
		code := parley.ErrorCode(j.out.err)
		switch j.name {
		case "same":
			if j.out.err != nil {
				t.Fatalf("same: %v", j.out.err)
			}
			if sameID == "" {
				sameID = j.out.msg.ID
			}
			if j.out.msg.ID != sameID || j.out.msg.Text != "once" {
				t.Errorf("same: got message %+v, want id %s", j.out.msg, sameID)
			}
			sameEvents += len(j.out.events)
		case "stranger":
			if code != parley.ENOTFOUND {
				t.Errorf("non-member send: %v, want not_found", j.out.err)
			}
		case "conflict":
			if code != parley.ECONFLICT {
				t.Errorf("client id of another conversation: %v, want conflict", j.out.err)
			}
		case "not-mine":
			if code != parley.EINVALID {
				t.Errorf("someone else's upload: %v, want invalid", j.out.err)
			}
		case "plain":
			if j.out.err != nil || len(j.out.events) != 1 || len(j.out.events[0].Audience) != 2 {
				t.Errorf("plain send: %+v", j.out)
			}
		}
	}
	if sameEvents != 1 {
		t.Errorf("the same send ten times made %d events, want 1", sameEvents)
	}
	checkDense(t, db, ann.ID, g1.ID, 11) // "same" once + 10 plain
	checkDense(t, db, ann.ID, g2.ID, 11) // "first" + 10 plain
	checkLog(t, db)
}

// TestBulkFallback: a send the bulk statement cannot store (a NUL, which
// SendMessage refuses up front, slipped past validation here) makes the
// batch run again one send at a time: it fails alone, the others commit.
func TestBulkFallback(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	ann, g := userAndGroup(t, db, "ann")
	outs := make([]result, 30)
	fns := make([]func(), len(outs))
	for i := range outs {
		text := fmt.Sprint(i)
		if i%10 == 0 {
			text = "bad\x00byte"
		}
		fns[i] = func() {
			m, e, err := (*engine)(db).Send(ctx, parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID,
				ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: text})
			outs[i] = result{m, e, err}
		}
	}
	burst(fns...)
	for i, o := range outs {
		if bad := i%10 == 0; bad != (o.err != nil) {
			t.Errorf("send %d: error %v (NUL: %v)", i, o.err, bad)
		}
	}
	checkDense(t, db, ann.ID, g.ID, 27)
	checkLog(t, db)
	// Validation refuses NUL up front.
	_, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: g.ID, SenderID: ann.ID, ClientID: "nul", Type: parley.Text, Text: "a\x00b"})
	if parley.ErrorCode(err) != parley.EINVALID {
		t.Errorf("SendMessage with a NUL: %v, want invalid", err)
	}
}

// checkDense: the conversation holds n messages with Seq 1..n.
func checkDense(t *testing.T, db *DB, user, conv string, n int) {
	t.Helper()
	page, err := db.Messages(t.Context(), user, conv, parley.MessageQuery{Limit: parley.MaxPageLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != n {
		t.Errorf("conversation has %d messages, want %d", len(page.Messages), n)
	}
	for i, m := range page.Messages {
		if m.Seq != int64(i+1) {
			t.Errorf("message %d has seq %d", i, m.Seq)
		}
	}
}

// checkLog: positions 1..Head, each once, and Head agrees.
func checkLog(t *testing.T, db *DB) {
	t.Helper()
	events, err := db.Events(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range events {
		if e.Pos != int64(i+1) {
			t.Fatalf("event %d at position %d", i, e.Pos)
		}
	}
	head, err := db.Head(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if head != int64(len(events)) {
		t.Errorf("Head %d, %d events", head, len(events))
	}
}
