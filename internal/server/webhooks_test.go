package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/webhook"
	"github.com/parleychat/parley/protocol"
)

const hookSecret = "receiver-secret-0123456789"

// receiver is a webhook endpoint for tests: it verifies each delivery's
// signature and records it; answer decides the status (200 by default).
type receiver struct {
	t   testing.TB
	srv *httptest.Server

	mu     sync.Mutex
	got    []delivery // every attempt, in arrival order
	answer func(d delivery, attempt int) int
	more   chan struct{} // signalled on each attempt
}

type delivery struct {
	id, kind, attempt string
	status            int
	p                 webhook.Payload
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, more: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		if err := webhook.Verify([]byte(hookSecret), req.Header.Get(webhook.HeaderSignature), body, time.Now(), 5*time.Minute); err != nil {
			t.Errorf("delivery %s: %v", req.Header.Get(webhook.HeaderEventID), err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var d delivery
		d.id, d.kind, d.attempt = req.Header.Get(webhook.HeaderEventID), req.Header.Get(webhook.HeaderEventType), req.Header.Get(webhook.HeaderAttempt)
		if err := json.Unmarshal(body, &d.p); err != nil {
			t.Errorf("delivery body %s: %v", body, err)
		}
		r.mu.Lock()
		d.status = http.StatusOK
		if r.answer != nil {
			n := 0
			for _, g := range r.got {
				if g.id == d.id {
					n++
				}
			}
			d.status = r.answer(d, n+1)
		}
		r.got = append(r.got, d)
		r.mu.Unlock()
		select {
		case r.more <- struct{}{}:
		default:
		}
		w.WriteHeader(d.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// waitOK waits until n distinct deliveries were answered 2xx and returns
// them in the order they were answered.
func (r *receiver) waitOK(n int) []delivery {
	r.t.Helper()
	deadline := time.After(testWait)
	for {
		r.mu.Lock()
		var ok []delivery
		for _, d := range r.got {
			if d.status/100 == 2 {
				ok = append(ok, d)
			}
		}
		r.mu.Unlock()
		if len(ok) >= n {
			return ok
		}
		select {
		case <-r.more:
		case <-deadline:
			r.t.Fatalf("got %d deliveries answered 2xx, want %d", len(ok), n)
		}
	}
}

func hooksConfig(url string, kinds []string, f func(*webhook.Config)) servertest.Option {
	return servertest.WithConfig(func(c *server.Config) {
		c.Webhooks = webhook.Config{
			Endpoints:    []webhook.Endpoint{{Name: "rx", URL: url, Kinds: kinds, Secret: []byte(hookSecret)}},
			AllowPrivate: true, // the receiver is on loopback
			Poll:         20 * time.Millisecond,
			BackoffBase:  10 * time.Millisecond,
			BackoffMax:   40 * time.Millisecond,
		}
		if f != nil {
			f(&c.Webhooks)
		}
	})
}

// TestWebhookDelivery: signed deliveries of the subscribed kinds only, in
// order, keyed by position, and message.new lists the members with no
// live connection.
func TestWebhookDelivery(t *testing.T) {
	rx := newReceiver(t)
	srv := servertest.Start(t, hooksConfig(rx.srv.URL, []string{webhook.KindMessageNew, webhook.KindConversationUpdated}, nil))
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	srv.Token(t, "bob", "Bob") // bob exists, never connects
	var conv parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &conv)
	m1 := a.send(conv.ID, "c1", "one")
	a.do(protocol.OpRead, protocol.Read{ConversationID: conv.ID, Seq: 1}, nil) // message.read: not subscribed
	m2 := a.send(conv.ID, "c2", "two")

	got := rx.waitOK(3)
	if kinds := []string{got[0].kind, got[1].kind, got[2].kind}; !slices.Equal(kinds, []string{"conversation.updated", "message.new", "message.new"}) {
		t.Fatalf("kinds = %v", kinds)
	}
	for i, d := range got {
		if d.id != fmt.Sprint(d.p.Pos) || d.p.ID != d.id || d.p.Event.Pos != d.p.Pos {
			t.Errorf("delivery %d: header id %s, payload id %s pos %d event pos %d: want all the event's position", i, d.id, d.p.ID, d.p.Pos, d.p.Event.Pos)
		}
		if i > 0 && d.p.Pos <= got[i-1].p.Pos {
			t.Errorf("delivery %d at %d after %d: out of order", i, d.p.Pos, got[i-1].p.Pos)
		}
	}
	if got[0].p.Offline != nil {
		t.Errorf("conversation.updated has offline_user_ids %v", *got[0].p.Offline)
	}
	for i, m := range []parley.Message{m1, m2} {
		d := got[i+1]
		if d.p.Event.Message == nil || d.p.Event.Message.ID != m.ID || d.p.Event.Message.Text != m.Text {
			t.Errorf("message.new %d carries %+v, want %+v", i, d.p.Event.Message, m)
		}
		if d.p.Offline == nil || !slices.Equal(*d.p.Offline, []string{"bob"}) {
			t.Errorf("message.new %d offline = %v, want [bob]", i, d.p.Offline)
		}
		if !slices.Equal(sorted(d.p.Members), []string{"alice", "bob"}) {
			t.Errorf("message.new %d members = %v", i, d.p.Members)
		}
	}

	// Bob connects: nobody is offline any more.
	connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	a.send(conv.ID, "c3", "three")
	got = rx.waitOK(4)
	if d := got[3]; d.kind != "message.new" || d.p.Offline == nil || len(*d.p.Offline) != 0 {
		t.Fatalf("with bob connected: %s offline %v, want message.new with []", d.kind, d.p.Offline)
	}
	// Counted once the answer is read, just after the receiver recorded it.
	waitMetricIs(t, srv, "parley_webhook_deliveries_total", `endpoint="rx"`, 4)
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// TestWebhookRetryOrder: failed attempts are retried with the same id,
// and a conversation's later event waits for the earlier one; another
// conversation's event does not.
func TestWebhookRetryOrder(t *testing.T) {
	rx := newReceiver(t)
	var firstMsg string
	rx.answer = func(d delivery, attempt int) int {
		if d.p.Event.Message != nil && d.p.Event.Message.Text == "first" && attempt <= 3 {
			firstMsg = d.id
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	}
	srv := servertest.Start(t, hooksConfig(rx.srv.URL, []string{webhook.KindMessageNew}, nil))
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	srv.Token(t, "bob", "Bob")
	srv.Token(t, "carol", "Carol")
	var ab, ac parley.Conversation
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "bob"}, &ab)
	a.do(protocol.OpCreateDirect, protocol.CreateDirect{UserID: "carol"}, &ac)
	a.send(ab.ID, "c1", "first")
	a.send(ab.ID, "c2", "second")
	a.send(ac.ID, "c3", "other")

	ok := rx.waitOK(3)
	var order []string
	for _, d := range ok {
		order = append(order, d.p.Event.Message.Text)
	}
	if i, j := slices.Index(order, "first"), slices.Index(order, "second"); i > j {
		t.Errorf("answered in order %v: second before first in one conversation", order)
	}
	rx.mu.Lock()
	defer rx.mu.Unlock()
	var attempts []string
	for _, d := range rx.got {
		if d.id == firstMsg {
			attempts = append(attempts, d.attempt)
		}
	}
	if !slices.Equal(attempts, []string{"1", "2", "3", "4"}) {
		t.Errorf("attempts of the first message (id %s) = %v, want 1..4 with one id", firstMsg, attempts)
	}
	// "other" (another conversation) is not held up by "first"'s
	// retries: it was answered before "first" succeeded.
	if i, j := slices.Index(order, "other"), slices.Index(order, "first"); i > j {
		t.Errorf("answered in order %v: the other conversation waited for first's retries", order)
	}
}

// TestWebhookDeadEndpoint: an endpoint that never answers does not slow
// sends (every send is acked while it holds every request it got), its
// backlog stops at MaxBacklog and the rest is counted as dropped.
func TestWebhookDeadEndpoint(t *testing.T) {
	hold := make(chan struct{})
	var (
		mu       sync.Mutex
		received int
	)
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		received++
		mu.Unlock()
		select {
		case <-hold:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(hold) // before Close, which waits for the handlers

	const backlog, sends = 20, 60
	srv := servertest.Start(t, hooksConfig(dead.URL, []string{webhook.KindMessageNew}, func(c *webhook.Config) {
		c.MaxBacklog = backlog
		c.Timeout = time.Hour // never gives up on its own within the test
	}))
	a, conv := aliceToBob(t, srv)
	for i := range sends {
		a.send(conv.ID, fmt.Sprint("c", i), "hi")
	}
	// Every send was acked; the endpoint answered none.
	mu.Lock()
	if received > webhook.DefaultConcurrency {
		t.Errorf("the endpoint got %d requests, want at most %d (one conversation: one at a time)", received, webhook.DefaultConcurrency)
	}
	mu.Unlock()
	waitMetricIs(t, srv, "parley_webhook_dropped_total", `endpoint="rx"`, sends-backlog)
	waitMetricIs(t, srv, "parley_webhook_backlog", `endpoint="rx"`, backlog)
	if v := metricLabel(t, srv, "parley_webhook_deliveries_total", `endpoint="rx"`); v != 0 {
		t.Errorf("deliveries = %v, want 0", v)
	}
}

// waitMetric waits until a metric reaches want (the enqueuer works in the
// background): it polls, and fails after testWait.
func waitMetricIs(t testing.TB, srv *servertest.Server, name, labels string, want float64) {
	t.Helper()
	deadline := time.Now().Add(testWait)
	for {
		v := metricLabel(t, srv, name, labels)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s{%s} = %v, want %v", name, labels, v, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebhookSkipsBlocker: a message.new of a user someone blocked goes
// to the webhook without the blocker, among the members or the offline
// ones: a push service sends the blocker nothing of it.
func TestWebhookSkipsBlocker(t *testing.T) {
	rx := newReceiver(t)
	srv := servertest.Start(t, hooksConfig(rx.srv.URL, []string{webhook.KindMessageNew}, nil))
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	srv.Token(t, "carol", "Carol") // never connects
	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"bob", "carol"}}, &g)
	a.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)
	a.ws.CloseNow()
	b.send(g.ID, "b1", "hidden from alice")

	d := rx.waitOK(1)[0]
	if !slices.Equal(sorted(d.p.Members), []string{"bob", "carol"}) || d.p.Offline == nil || !slices.Equal(*d.p.Offline, []string{"carol"}) {
		t.Errorf("bob's message.new: members %v, offline %v; want bob and carol, carol", d.p.Members, d.p.Offline)
	}
}

// TestWebhookQuoteHidden: the message.new of carol's reply to bob's
// message goes to alice, who blocked bob, and so to the webhook with
// alice among its members and offline users (a push for her); its quote
// is whole in the event (the other members read it so), and
// quote_hidden_user_ids names alice: a push to her must not show it.
// A message.new that quotes nothing hidden has no such list.
func TestWebhookQuoteHidden(t *testing.T) {
	rx := newReceiver(t)
	srv := servertest.Start(t, hooksConfig(rx.srv.URL, []string{webhook.KindMessageNew}, nil))
	a := connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	b := connect(t, srv, srv.Token(t, "bob", "Bob"), nil)
	c := connect(t, srv, srv.Token(t, "carol", "Carol"), nil)
	var g parley.Conversation
	a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: "g", MemberIDs: []string{"bob", "carol"}}, &g)
	a.do(protocol.OpBlock, protocol.UserRef{UserID: "bob"}, nil)
	a.ws.CloseNow()
	parent := b.send(g.ID, "b1", "bob's secret")
	c.do(protocol.OpSend, protocol.Send{ConversationID: g.ID, ClientID: "c1", Text: "re", ReplyTo: parent.ID}, nil)

	ds := rx.waitOK(2)
	if ds[0].p.QuoteHidden != nil {
		t.Errorf("bob's message.new: quote_hidden_user_ids %v, want none", ds[0].p.QuoteHidden)
	}
	d := ds[1]
	if m := d.p.Event.Message; m == nil || m.ReplyTo == nil || m.ReplyTo.Text != parent.Text || m.ReplyTo.Hidden {
		t.Fatalf("carol's message.new: %+v", d.p.Event.Message)
	}
	if !slices.Equal(sorted(d.p.Members), []string{"alice", "bob", "carol"}) || d.p.Offline == nil || !slices.Contains(*d.p.Offline, "alice") ||
		!slices.Equal(d.p.QuoteHidden, []string{"alice"}) {
		t.Errorf("carol's message.new: members %v, offline %v, quote hidden from %v; want all three, alice among them, alice", d.p.Members, d.p.Offline, d.p.QuoteHidden)
	}
}
