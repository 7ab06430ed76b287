package clustertest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	parleyserver "github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	nodeCount  = 3
	clientsN   = 30
	convsN     = 10 // groups of three, one member on each node
	perClient  = 15 // messages each client sends
	killAfter  = 150
	grace      = 500 * time.Millisecond
	waitBound  = 60 * time.Second // liveness bound for every wait, not a timing assertion
	pingPeriod = 2 * time.Second
)

// TestKillNode: 30 clients on three nodes in 10 conversations exchange
// messages; node 0 dies mid-stream (listener and connections dropped, no
// goodbye, nothing more from it on the broker). Half of its clients move
// to the other nodes at once and resume; the other half stay away until
// the presence check is done, then come back and resume too. In the end
// every client holds every message of its conversation exactly once, in
// Seq order, with positions strictly increasing across reconnects; the
// users who stayed away went offline (after the dead node's heartbeat
// lapsed and the grace period), the users who moved never did.
func TestKillNode(t *testing.T) {
	nodes, secret := startNodes(t, nodeCount)
	ctx := t.Context()

	// Users and conversations. Client i is on node i%3; group k holds
	// clients 3k, 3k+1 and 3k+2, one on each node.
	clients := make([]*client, clientsN)
	for i := range clients {
		clients[i] = newClient(ctx, t, nodes[0].store, secret, i, fmt.Sprintf("user%02d", i), fmt.Sprintf("User %d", i))
		clients[i].node = i % nodeCount
	}
	convs := groupsOfThree(ctx, t, clients, convsN, "group", func(k int) parley.Store { return nodes[k%nodeCount].store })
	// Clients of node 0 in even groups move when it dies; in odd groups
	// they stay away for a while.
	for k := range convsN {
		clients[3*k].staysAway = k%2 == 1
	}

	connectAll(ctx, t, clients, nodes)

	var acked atomic.Int64
	var senders sync.WaitGroup
	for _, c := range clients {
		senders.Go(func() { c.sendAll(ctx, nodes, &acked) })
	}

	// Kill node 0 mid-stream.
	waitUntil(t, "messages before the kill", func() bool { return acked.Load() >= killAfter })
	nodes[0].kill()
	t.Logf("killed node0 after %d acknowledged messages", acked.Load())
	senders.Wait()
	if t.Failed() {
		t.FailNow()
	}

	// Presence, as seen by each group's member on node 1: the mover is
	// online, the one who stayed away is offline (once node 0's heartbeat
	// lapsed and the grace period ran out).
	waitUntil(t, "presence after the kill", func() bool {
		for k := range convsN {
			obs, away := clients[3*k+1], clients[3*k]
			online, err := obs.onlineContacts(ctx)
			if err != nil {
				t.Fatalf("presence: %v", err)
			}
			want := []string{clients[3*k+2].user}
			if !away.staysAway {
				want = append(want, away.user)
			}
			if !sameSet(online, want) {
				return false
			}
		}
		return true
	})
	for k := range convsN {
		obs, away := clients[3*k+1], clients[3*k]
		got := obs.presenceOf(away.user)
		switch {
		case away.staysAway && (len(got) == 0 || got[len(got)-1]):
			t.Errorf("%s saw %s's presence as %v, want it to end offline", obs.user, away.user, got)
		case !away.staysAway && slices.Contains(got, false):
			t.Errorf("%s saw %s go offline (%v), though they moved to another node at once", obs.user, away.user, got)
		}
	}

	// The ones who stayed away come back (to node 1), resume and resend
	// the message they were sending when node 0 died.
	for _, c := range clients {
		if c.staysAway {
			if err := c.comeBack(ctx, nodes[1]); err != nil {
				t.Fatalf("client %d coming back: %v", c.idx, err)
			}
		}
	}

	// Every client converges on the store's history of its conversation.
	want := map[string][]parley.Message{}
	for _, conv := range convs {
		want[conv] = history(t, nodes[1].store, clients, conv)
	}
	waitUntil(t, "every client to hold every message", func() bool {
		for _, c := range clients {
			if c.count() < len(want[c.conv]) {
				return false
			}
		}
		return true
	})
	total := 0
	for _, conv := range convs {
		total += len(want[conv])
	}
	for _, c := range clients {
		c.mu.Lock()
		if c.violation != "" {
			t.Errorf("client %d: %s", c.idx, c.violation)
		}
		got := ids(c.got)
		c.mu.Unlock()
		if w := ids(want[c.conv]); !slices.Equal(got, w) {
			t.Errorf("client %d: got %d messages %v, want %d %v", c.idx, len(got), got, len(w), w)
		}
	}
	t.Logf("%d messages in %d conversations; every client got every message of its conversation once, in order", total, convsN)

	// Typing, an ephemeral event, crosses nodes too: a member on node 1
	// types, the members on nodes 2 and 0 (the mover, now elsewhere) see it.
	typist := clients[1]
	if f, err := typist.request(ctx, protocol.OpTyping, protocol.Typing{ConversationID: typist.conv, Typing: true}); err != nil || f.Type != protocol.TypeReply {
		t.Fatalf("typing: %+v %v", f, err)
	}
	waitUntil(t, "typing to reach the other nodes", func() bool {
		for _, c := range []*client{clients[0], clients[2]} {
			c.mu.Lock()
			saw := slices.Contains(c.typing, typist.user)
			c.mu.Unlock()
			if !saw {
				return false
			}
		}
		return true
	})
}

// history reads a conversation from the store, checking Seq is dense.
func history(t *testing.T, st parley.Store, clients []*client, conv string) []parley.Message {
	t.Helper()
	var member string
	for _, c := range clients {
		if c.conv == conv {
			member = c.user
		}
	}
	var all []parley.Message
	for before := int64(0); ; {
		page, err := st.Messages(t.Context(), member, conv, parley.MessageQuery{Before: before, Limit: parley.MaxPageLimit})
		if err != nil {
			t.Fatal(err)
		}
		all = append(slices.Clone(page.Messages), all...)
		if !page.HasMore {
			break
		}
		before = page.Messages[0].Seq
	}
	for i, m := range all {
		if m.Seq != int64(i+1) {
			t.Fatalf("conversation %s: seq %d at index %d", conv, m.Seq, i)
		}
	}
	return all
}

func ids(ms []parley.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// waitUntil polls cond until it holds, failing after waitBound.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	servertest.WaitUntil(t, what, waitBound, cond)
}

// node is one server with its own store pool, broker connection and
// listener.
type node struct {
	id       string
	store    *postgres.DB
	broker   *cutBroker
	srv      *parleyserver.Server
	ln       *trackingListener
	wsURL    string
	serveErr chan error
	logw     *servertest.LogToTest
	killed   atomic.Bool
}

// startNodes starts n nodes, "node0" on, on one fresh PostgreSQL schema
// and one NATS subject, and returns them with the secret they share.
func startNodes(t *testing.T, n int) ([]*node, []byte) {
	t.Helper()
	dsn, natsURL, subject := pgtest.Schema(t), natstest.URL(t), natstest.Subject(t)
	secret, err := auth.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*node, n)
	for i := range nodes {
		nodes[i] = startNode(t, fmt.Sprintf("node%d", i), dsn, natsURL, subject, secret)
	}
	return nodes, secret
}

// startNode starts a node; opts, if any, change its configuration.
func startNode(t *testing.T, id, dsn, natsURL, subject string, secret []byte, opts ...func(*parleyserver.Config)) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	nb, err := natsbroker.Open(ctx, natsbroker.Config{URL: natsURL, Subject: subject, Name: id})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	n := &node{id: id, store: st, broker: &cutBroker{Broker: nb}, logw: &servertest.LogToTest{T: t}}
	cfg := parleyserver.Config{
		Store: st, Broker: n.broker, NodeID: id, Secret: secret,
		Logger:        slog.New(slog.NewTextHandler(n.logw, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Limits:        parleyserver.Unlimited(),
		PresenceGrace: grace,
		Static:        http.NotFoundHandler(),
	}
	for _, o := range opts {
		o(&cfg)
	}
	n.srv, err = parleyserver.New(cfg)
	if err != nil {
		nb.Close()
		st.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.ln = &trackingListener{Listener: ln, conns: map[net.Conn]struct{}{}}
	n.wsURL = "ws://" + ln.Addr().String() + protocol.Path
	n.serveErr = make(chan error, 1)
	go func() { n.serveErr <- n.srv.Serve(n.ln) }() // owned by n: stop waits for it
	t.Cleanup(func() { n.stop(t) })
	return n
}

// kill makes the node vanish as a crashed process would: nothing more
// from it on the broker, its listener closed and every connection reset.
// Its goroutines keep running (in a real crash they would be gone) but
// can no longer reach anyone.
func (n *node) kill() {
	n.killed.Store(true)
	n.broker.cut.Store(true)
	n.ln.kill()
}

// stop shuts the node down and closes its broker and store.
func (n *node) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.srv.Shutdown(ctx); err != nil {
		t.Errorf("%s: shutdown: %v", n.id, err)
	}
	if err := <-n.serveErr; err != nil && !n.killed.Load() {
		t.Errorf("%s: serve: %v", n.id, err)
	}
	n.broker.Close()
	n.store.Close()
	n.logw.Stop()
}

// cutBroker is a real broker that a kill cuts off: after cut, the node
// publishes nothing and hears nothing, as if its process were gone.
// After dropUsers, it publishes no notice of changed users
// (parley.BrokerMessage.Users), as a node that dies between a change's
// commit and its notice would not.
type cutBroker struct {
	parley.Broker
	cut, dropUsers atomic.Bool
}

func (b *cutBroker) Publish(ctx context.Context, m parley.BrokerMessage) error {
	if b.cut.Load() {
		return nil
	}
	if b.dropUsers.Load() && m.Users != nil {
		if m.Users = nil; m.Events == nil && m.Presence == nil && m.Usage == nil {
			return nil
		}
	}
	return b.Broker.Publish(ctx, m)
}

// CarriesEventData forwards the wrapped broker's (the server asks its
// broker whether to publish parley.Event.Data).
func (b *cutBroker) CarriesEventData() bool {
	dc, ok := b.Broker.(interface{ CarriesEventData() bool })
	return ok && dc.CarriesEventData()
}

// BrokerCounts forwards the wrapped natsbroker's (the server exports
// them as metrics).
func (b *cutBroker) BrokerCounts() (read, payloads, dropped int64) {
	return b.Broker.(*natsbroker.Broker).BrokerCounts()
}

// Lost forwards the wrapped natsbroker's (the server drops its cached
// users when it moves).
func (b *cutBroker) Lost() uint64 { return b.Broker.(*natsbroker.Broker).Lost() }

func (b *cutBroker) Subscribe(fn func(parley.BrokerMessage)) (func(), error) {
	return b.Broker.Subscribe(func(m parley.BrokerMessage) {
		if !b.cut.Load() {
			fn(m)
		}
	})
}

// trackingListener remembers accepted connections so kill can reset them.
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	killed bool
}

func (l *trackingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		killed := l.killed
		if !killed {
			l.conns[c] = struct{}{}
		}
		l.mu.Unlock()
		if !killed {
			return c, nil
		}
		c.Close()
	}
}

func (l *trackingListener) kill() {
	l.mu.Lock()
	l.killed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	l.Listener.Close()
	for c := range conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, no FIN: the peer learns nothing polite
		}
		c.Close()
	}
}

// groupsOfThree creates n groups: group k (titled title and k) has
// clients 3k, 3k+1 and 3k+2, the first its creator through store(k), and
// is each one's conversation. It returns the groups' ids.
func groupsOfThree(ctx context.Context, t *testing.T, clients []*client, n int, title string, store func(k int) parley.Store) []string {
	t.Helper()
	convs := make([]string, n)
	for k := range convs {
		c, _, err := store(k).CreateGroup(ctx, clients[3*k].user, fmt.Sprint(title, " ", k),
			[]string{clients[3*k+1].user, clients[3*k+2].user})
		if err != nil {
			t.Fatal(err)
		}
		convs[k] = c.ID
		for j := range 3 {
			clients[3*k+j].conv = c.ID
		}
	}
	return convs
}

// connectAll connects each client to its node; they close when the test
// ends.
func connectAll(ctx context.Context, t *testing.T, clients []*client, nodes []*node) {
	t.Helper()
	for _, c := range clients {
		if err := c.connect(ctx, nodes[c.node], nil); err != nil {
			t.Fatalf("client %d: %v", c.idx, err)
		}
	}
	t.Cleanup(func() {
		for _, c := range clients {
			c.close()
		}
	})
}

// client is a chat client speaking protocol v1 (or 2, with v2): it
// resumes from the last position it saw (per shard) after every
// reconnect, resends an unacknowledged message with the same client id,
// and records what it receives.
// newClient registers user id (named name) in st and returns client idx
// for it, with a token signed by secret, on node 0 and not connected.
func newClient(ctx context.Context, t *testing.T, st parley.Store, secret []byte, idx int, id, name string) *client {
	t.Helper()
	if _, err := st.EnsureUser(ctx, id, name); err != nil {
		t.Fatal(err)
	}
	tok, _, err := auth.Mint(secret, id, name, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, idx: idx, user: id, token: tok, seen: map[string]bool{}, presence: map[string][]bool{}}
}

type client struct {
	t         *testing.T
	idx       int
	user      string
	token     string
	conv      string
	node      int  // index of the node it is connected to
	staysAway bool // when its node dies, it does not reconnect until told

	v2        bool // speaks protocol 2: resumes with cursor
	mu        sync.Mutex
	cur       *wsConn
	lastPos   int64                // protocol 1
	cursor    protocol.ShardCursor // protocol 2
	got       []parley.Message     // newMessage events, in the order received
	seen      map[string]bool      // message ids received
	presence  map[string][]bool    // user -> online/offline events received, in order
	typing    []string             // users seen typing
	keepAll   bool                 // keep every event frame's data in all
	all       []json.RawMessage    // with keepAll: every event frame's data, in the order received
	violation string               // the first broken rule seen
	pending   *protocol.Send       // the send under way when the node died (staysAway)
	reqs      atomic.Int64
	// answerWait, when set, is how long a request waits for its answer
	// before the connection counts as lost (a stalled node answers
	// nothing, and a client must move on); default waitBound.
	answerWait time.Duration
	conns      int      // connections made, for trail
	trail      []string // the last durable events received and where, for a violation's report
}

var errConnLost = errors.New("connection lost")

func (c *client) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func (c *client) presenceOf(user string) []bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.presence[user])
}

func (c *client) violate(format string, args ...any) {
	if c.violation == "" {
		c.violation = fmt.Sprintf(format, args...) + "; the last events received: " + strings.Join(c.trail, ", ")
	}
}

// connect dials n, says hello (resuming from resume when set) and starts
// the connection's reader and pinger.
func (c *client) connect(ctx context.Context, n *node, resume *int64) error {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(dctx, n.wsURL, nil)
	if err != nil {
		return err
	}
	ws.SetReadLimit(1 << 20)
	h := protocol.Hello{Token: c.token, ResumeFrom: resume}
	if c.v2 {
		// resume says whether to resume; the position is the cursor.
		c.mu.Lock()
		h.Protocol, h.ResumeFrom = protocol.Version2, nil
		if resume != nil {
			h.Cursor = c.cursor.Clone()
		}
		c.mu.Unlock()
	}
	hello, _ := json.Marshal(h)
	b, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, Data: hello})
	if err := ws.Write(dctx, websocket.MessageText, b); err != nil {
		ws.CloseNow()
		return err
	}
	_, b, err = ws.Read(dctx)
	if err != nil {
		ws.CloseNow()
		return err
	}
	var f protocol.Frame
	if err := json.Unmarshal(b, &f); err != nil || f.Type != protocol.TypeWelcome {
		ws.CloseNow()
		return fmt.Errorf("after hello got %s (%v)", b, err)
	}
	var w protocol.Welcome
	if err := json.Unmarshal(f.Data, &w); err != nil {
		ws.CloseNow()
		return err
	}
	wc := &wsConn{ws: ws, waiters: map[string]chan protocol.Frame{}, done: make(chan struct{})}
	c.mu.Lock()
	c.conns++
	wc.tag = fmt.Sprintf("conn %d on %s (head %d, resume %v)", c.conns, n.id, w.Head, resume != nil)
	if resume != nil {
		wc.tag = fmt.Sprintf("conn %d on %s (head %d, resume_from %d)", c.conns, n.id, w.Head, *resume)
	}
	if c.v2 {
		wc.tag = fmt.Sprintf("conn %d on %s (heads %v, cursor %v)", c.conns, n.id, w.Cursor, h.Cursor)
	}
	switch {
	case resume == nil && c.v2:
		c.cursor = w.Cursor.Clone()
	case resume == nil:
		c.lastPos = w.Head
	}
	c.cur = wc
	c.mu.Unlock()
	wc.wg.Add(2)
	go wc.readLoop(c) // owned by wc: close waits for it
	go wc.pingLoop(c) // owned by wc: close waits for it
	return nil
}

// reconnect connects to the first live node after the current one,
// resuming from the last position seen.
func (c *client) reconnect(ctx context.Context, nodes []*node) error {
	c.mu.Lock()
	old := c.cur
	c.mu.Unlock()
	if old != nil {
		old.close()
	}
	// Read the position only now: the old connection's reader may have
	// received more until it ended.
	c.mu.Lock()
	resume := c.lastPos
	c.mu.Unlock()
	var errs []error
	for i := 1; i <= len(nodes); i++ {
		n := (c.node + i) % len(nodes)
		if err := c.connect(ctx, nodes[n], &resume); err != nil {
			errs = append(errs, err)
			continue
		}
		c.node = n
		return nil
	}
	return errors.Join(errs...)
}

// sendAll sends perClient messages one at a time, each until it is
// acknowledged, reconnecting (and resending with the same client id) when
// the connection is lost. A client that stays away stops at the first
// loss and keeps the send for comeBack.
func (c *client) sendAll(ctx context.Context, nodes []*node, acked *atomic.Int64) {
	for i := range perClient {
		s := protocol.Send{ConversationID: c.conv, ClientID: fmt.Sprintf("%s-%d", c.user, i),
			Type: parley.Text, Text: fmt.Sprintf("%s says %d", c.user, i)}
		for {
			err := c.send(ctx, s)
			if err == nil {
				acked.Add(1)
				break
			}
			if !errors.Is(err, errConnLost) {
				c.t.Errorf("client %d: send: %v", c.idx, err)
				return
			}
			if c.staysAway {
				c.pending = &s
				return
			}
			if err := c.reconnect(ctx, nodes); err != nil {
				c.t.Errorf("client %d: reconnect: %v", c.idx, err)
				return
			}
		}
		time.Sleep(20 * time.Millisecond) // pace, so the kill lands mid-stream
	}
	// Done sending; a client of node 0 that finished before the kill must
	// still move when it dies.
	if c.node != 0 || c.staysAway {
		return
	}
	for !nodes[0].killed.Load() {
		if ctx.Err() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.mu.Lock()
	done := c.cur.done
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return
	}
	if err := c.reconnect(ctx, nodes); err != nil {
		c.t.Errorf("client %d: reconnect: %v", c.idx, err)
	}
}

// comeBack reconnects a client that stayed away and resends its pending
// message.
func (c *client) comeBack(ctx context.Context, n *node) error {
	c.mu.Lock()
	old := c.cur
	c.mu.Unlock()
	old.close()
	c.mu.Lock()
	resume := c.lastPos // after the old reader ended
	c.mu.Unlock()
	if err := c.connect(ctx, n, &resume); err != nil {
		return err
	}
	if c.pending != nil {
		return c.send(ctx, *c.pending)
	}
	return nil
}

func (c *client) send(ctx context.Context, s protocol.Send) error {
	_, err := c.sendMessage(ctx, s)
	return err
}

// sendMessage sends s and returns the message its reply holds, as its
// JSON.
func (c *client) sendMessage(ctx context.Context, s protocol.Send) (json.RawMessage, error) {
	f, err := c.request(ctx, protocol.OpSend, s)
	if err != nil {
		return nil, err
	}
	if f.Type != protocol.TypeReply {
		return nil, fmt.Errorf("send %s: %s %+v", s.ClientID, f.Type, f.Error)
	}
	return f.Data, nil
}

func (c *client) onlineContacts(ctx context.Context) ([]string, error) {
	f, err := c.request(ctx, protocol.OpPresence, nil)
	if err != nil {
		return nil, err
	}
	if f.Type != protocol.TypeReply {
		return nil, fmt.Errorf("presence: %s %+v", f.Type, f.Error)
	}
	var pl protocol.PresenceList
	if err := json.Unmarshal(f.Data, &pl); err != nil {
		return nil, err
	}
	return pl.Online, nil
}

// request sends op and waits for its reply or error frame, or for the
// connection to be lost (errConnLost).
func (c *client) request(ctx context.Context, op string, data any) (protocol.Frame, error) {
	c.mu.Lock()
	wc := c.cur
	c.mu.Unlock()
	id := fmt.Sprint(c.reqs.Add(1))
	ch := make(chan protocol.Frame, 1)
	wc.mu.Lock()
	if wc.lost {
		wc.mu.Unlock()
		return protocol.Frame{}, errConnLost
	}
	wc.waiters[id] = ch
	wc.mu.Unlock()
	var raw json.RawMessage
	if data != nil {
		raw, _ = json.Marshal(data)
	}
	b, _ := json.Marshal(protocol.Request{Op: op, ID: id, Data: raw})
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := wc.ws.Write(wctx, websocket.MessageText, b); err != nil {
		return protocol.Frame{}, errConnLost
	}
	wait := waitBound
	if c.answerWait > 0 {
		wait = c.answerWait
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return protocol.Frame{}, errConnLost
		}
		return f, nil
	case <-time.After(wait):
		if c.answerWait > 0 {
			return protocol.Frame{}, errConnLost
		}
		return protocol.Frame{}, fmt.Errorf("%s: no answer in %v", op, waitBound)
	}
}

// close drops the client's connection.
func (c *client) close() {
	c.mu.Lock()
	wc := c.cur
	c.mu.Unlock()
	if wc != nil {
		wc.close()
	}
}

// wsConn is one connection of a client.
type wsConn struct {
	ws      *websocket.Conn
	mu      sync.Mutex
	waiters map[string]chan protocol.Frame
	lost    bool
	tag     string        // which connection, for trail
	resumed bool          // resumed received (guarded by the client's mu)
	done    chan struct{} // closed when the reader ends
	wg      sync.WaitGroup
}

func (wc *wsConn) close() {
	wc.ws.CloseNow()
	wc.wg.Wait()
}

func (wc *wsConn) readLoop(c *client) {
	defer wc.wg.Done()
	defer func() {
		wc.mu.Lock()
		wc.lost = true
		for id, ch := range wc.waiters {
			close(ch)
			delete(wc.waiters, id)
		}
		wc.mu.Unlock()
		close(wc.done)
	}()
	for {
		_, b, err := wc.ws.Read(context.Background())
		if err != nil {
			return
		}
		var f protocol.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			c.mu.Lock()
			c.violate("bad frame %s", b)
			c.mu.Unlock()
			continue
		}
		switch f.Type {
		case protocol.TypeReply, protocol.TypeError:
			wc.mu.Lock()
			ch, ok := wc.waiters[f.ID]
			delete(wc.waiters, f.ID)
			wc.mu.Unlock()
			if ok {
				ch <- f
			}
		case protocol.TypeEvent:
			var e parley.Event
			if err := json.Unmarshal(f.Data, &e); err != nil {
				c.mu.Lock()
				c.violate("bad event %s", f.Data)
				c.mu.Unlock()
				continue
			}
			c.mu.Lock()
			if c.keepAll {
				c.all = append(c.all, f.Data)
			}
			if e.Pos > 0 {
				phase := "replay"
				if wc.resumed {
					phase = "live"
				}
				c.trail = append(c.trail, fmt.Sprintf("%d/%d %s via %s", e.Shard, e.Pos, phase, wc.tag))
				if len(c.trail) > 6 {
					c.trail = c.trail[1:]
				}
			}
			c.mu.Unlock()
			c.record(e)
		case protocol.TypeResumed:
			c.mu.Lock()
			wc.resumed = true
			c.mu.Unlock()
		case protocol.TypeResync:
			c.mu.Lock()
			c.violate("resync: %s", f.Data)
			c.mu.Unlock()
		}
	}
}

// record checks and keeps one event.
func (c *client) record(e parley.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Pos > 0 && c.v2 {
		if e.Pos <= c.cursor[e.Shard] {
			c.violate("event at position %d of shard %d after %d", e.Pos, e.Shard, c.cursor[e.Shard])
			return
		}
		c.cursor[e.Shard] = e.Pos
	} else if e.Pos > 0 {
		if e.Pos <= c.lastPos {
			c.violate("event at position %d after %d", e.Pos, c.lastPos)
			return
		}
		c.lastPos = e.Pos
	}
	switch e.Type {
	case parley.EventNewMessage:
		if e.Message == nil || e.ConversationID != c.conv {
			c.violate("unexpected newMessage %+v", e)
			return
		}
		if c.seen[e.Message.ID] {
			c.violate("message %s (seq %d) received twice", e.Message.ID, e.Message.Seq)
			return
		}
		if n := len(c.got); n > 0 && e.Message.Seq != c.got[n-1].Seq+1 {
			c.violate("seq %d after %d", e.Message.Seq, c.got[n-1].Seq)
		} else if n == 0 && e.Message.Seq != 1 {
			c.violate("first message has seq %d", e.Message.Seq)
		}
		c.seen[e.Message.ID] = true
		c.got = append(c.got, *e.Message)
	case parley.EventUserOnline, parley.EventUserOffline:
		c.presence[e.UserID] = append(c.presence[e.UserID], e.Type == parley.EventUserOnline)
	case parley.EventTypingStarted:
		c.typing = append(c.typing, e.UserID)
	}
}

func (wc *wsConn) pingLoop(c *client) {
	defer wc.wg.Done()
	tick := time.NewTicker(pingPeriod)
	defer tick.Stop()
	for {
		select {
		case <-wc.done:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			b, _ := json.Marshal(protocol.Request{Op: protocol.OpPing, ID: "ping"})
			_ = wc.ws.Write(ctx, websocket.MessageText, b) // a lost conn shows in the reader
			cancel()
		}
	}
}
