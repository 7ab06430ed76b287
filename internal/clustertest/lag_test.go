package clustertest_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/faultproxy"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/protocol"
)

// Sizes of TestLaggingNodeAndNATSOutage.
const (
	lagGroups   = 8               // conversations of three, one member on each node
	lagPerUser  = 160             // messages each member sends
	lagMoveEvry = 7               // a member moves to the next node after this many sends
	lagStall    = 4 * time.Second // SIGSTOP of one node
	natsStall   = 3 * time.Second // NATS stopped
	pgStall     = 3 * time.Second // one node cut off from PostgreSQL
	lagAnswer   = 2 * time.Second // a send unanswered this long: the node is stalled, move
)

// TestLaggingNodeAndNATSOutage runs three `parley serve` processes on the
// machine's PostgreSQL and a NATS server of the test's own, with members
// of eight conversations (one member of each on each node) sending
// messages and moving from node to node as they go. Meanwhile it stops
// one node (SIGSTOP) for 4 s, so its delivery falls behind while members
// hold positions it has not delivered, and then stops NATS for 4 s, so
// every node falls behind the store and catches up by reading it. Members
// whose sends go unanswered for 2 s (the stopped node) move on, resending
// with the same client id. Last it cuts node 1 off from PostgreSQL for 3 s
// (through a fault proxy): /readyz must answer 503 meanwhile, its writes
// fail with `unavailable` (never `internal`) and members move and resend,
// and it is ready again once the link returns. While NATS is stopped
// every node's /readyz answers 503 too.
//
// Then every member's stream must hold every message of its conversation
// exactly once, in order (0 lost, 0 duplicated, 0 reordered), with
// positions strictly increasing across every reconnect and no resync: a
// node that has not delivered a client's position must replay from the
// store, never answer with its own older head nor deliver again what the
// client saw.
func TestLaggingNodeAndNATSOutage(t *testing.T) { lagTest(t, 1) }

// TestLaggingNodeAndNATSOutageShards is TestLaggingNodeAndNATSOutage on
// a log of 8 shards, with clients of protocol 2 (a cursor per shard): the
// same faults, the same rules per shard (positions strictly increasing
// within each shard across every reconnect, no resync), and every
// conversation's messages exactly once and in order.
func TestLaggingNodeAndNATSOutageShards(t *testing.T) { lagTest(t, 8) }

func lagTest(t *testing.T, shards int) {
	if testing.Short() {
		t.Skip("builds and runs three server processes")
	}
	dsn := pgtest.Schema(t)
	bin := buildParley(t)
	nats := startNATS(t)
	secret := []byte("cluster-lag-test-secret-0123456789abcdef")
	subject := natstest.Subject(t)

	ctx := t.Context()
	st, err := postgres.Open(ctx, dsn, sqlstore.WithShards(shards)) // migrates and sets the shard count before the nodes start
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Node 1 reaches PostgreSQL through a proxy that can cut it off.
	pgProxy, cutDSN, err := faultproxy.ListenURL(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pgProxy.Close()
	procs := make([]*proc, nodeCount)
	nodes := make([]*node, nodeCount)
	for i := range procs {
		nodeDSN := dsn
		if i == 1 {
			nodeDSN = cutDSN
		}
		procs[i] = startProc(t, bin, fmt.Sprintf("lag%d", i), nodeDSN, nats.url()+"?subject="+subject, string(secret))
		nodes[i] = &node{id: procs[i].id, wsURL: "ws://" + procs[i].addr + protocol.Path}
	}

	clients := make([]*client, 3*lagGroups)
	for i := range clients {
		id := fmt.Sprintf("lag%02d", i)
		if _, err := st.EnsureUser(ctx, id, id); err != nil {
			t.Fatal(err)
		}
		tok, _, err := auth.Mint(secret, id, id, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = &client{t: t, idx: i, user: id, token: tok, node: i % nodeCount, seen: map[string]bool{},
			presence: map[string][]bool{}, answerWait: lagAnswer, v2: shards > 1}
	}
	convs := groupsOfThree(ctx, t, clients, lagGroups, "lag group", func(int) parley.Store { return st })
	used := map[int]bool{}
	for _, conv := range convs {
		used[parley.ShardOf(conv, shards)] = true
	}
	t.Logf("%d conversations in %d of %d shards", len(convs), len(used), shards)
	connectAll(ctx, t, clients, nodes)

	var acked, moves atomic.Int64
	var senders sync.WaitGroup
	for _, c := range clients {
		senders.Go(func() { c.sendMoving(ctx, nodes, &acked, &moves) })
	}
	total := int64(len(clients) * lagPerUser)

	// Stop node 2 for a while, mid-stream.
	waitUntil(t, "messages before the stop", func() bool { return acked.Load() >= total/5 })
	procs[2].signal(t, syscall.SIGSTOP)
	t.Logf("stopped %s after %d acknowledged messages", procs[2].id, acked.Load())
	time.Sleep(lagStall) // the length of the fault, not a synchronisation
	procs[2].signal(t, syscall.SIGCONT)
	t.Logf("resumed %s after %d acknowledged messages", procs[2].id, acked.Load())

	// Then stop NATS for a while.
	waitUntil(t, "messages before the NATS outage", func() bool { return acked.Load() >= 2*total/5 })
	nats.stop()
	t.Logf("stopped NATS after %d acknowledged messages", acked.Load())
	for _, p := range procs {
		waitUntil(t, p.id+" /readyz to answer 503 without NATS", func() bool { return p.ready() == http.StatusServiceUnavailable })
	}
	time.Sleep(natsStall) // the length of the fault, not a synchronisation
	nats.start(t)
	t.Logf("restarted NATS after %d acknowledged messages", acked.Load())
	for _, p := range procs {
		waitUntil(t, p.id+" /readyz to answer 200 with NATS back", func() bool { return p.ready() == http.StatusOK })
	}

	// Then cut node 1 off from PostgreSQL: it says so on /readyz (503)
	// and its writes fail with a code the members retry on (they move and
	// resend); when the link returns it is ready again and catches up.
	waitUntil(t, "messages before the PostgreSQL cut", func() bool { return acked.Load() >= 7*total/10 })
	pgProxy.Refuse(true)
	pgProxy.CutAll()
	t.Logf("cut %s off from PostgreSQL after %d acknowledged messages", procs[1].id, acked.Load())
	waitUntil(t, procs[1].id+" /readyz to answer 503", func() bool { return procs[1].ready() == http.StatusServiceUnavailable })
	time.Sleep(pgStall) // the length of the fault, not a synchronisation
	pgProxy.Heal()
	pgProxy.Refuse(false)
	waitUntil(t, procs[1].id+" /readyz to answer 200 again", func() bool { return procs[1].ready() == http.StatusOK })
	t.Logf("%s reaches PostgreSQL again after %d acknowledged messages", procs[1].id, acked.Load())

	senders.Wait()
	if t.Failed() {
		t.FailNow()
	}

	want := map[string][]parley.Message{}
	for _, conv := range convs {
		want[conv] = history(t, st, clients, conv)
	}
	waitUntil(t, "every client to hold every message", func() bool {
		done := true
		for _, c := range clients {
			c.mu.Lock()
			bad := c.violation != ""
			c.mu.Unlock()
			if bad {
				return true // reported below; its stream stopped there
			}
			done = done && c.count() >= len(want[c.conv])
		}
		return done
	})
	var lost, dup int
	for _, c := range clients {
		c.mu.Lock()
		if c.violation != "" {
			t.Errorf("client %d (%s): %s", c.idx, c.user, c.violation)
		}
		got := ids(c.got)
		c.mu.Unlock()
		w := ids(want[c.conv])
		if len(got) < len(w) {
			lost += len(w) - len(got)
		}
		if len(got) > len(w) {
			dup += len(got) - len(w)
		}
		if !slicesEqual(got, w) {
			t.Errorf("client %d: got %d messages, want %d, not the same list in the same order", c.idx, len(got), len(w))
		}
	}
	stored := 0
	for _, conv := range convs {
		stored += len(want[conv])
	}
	t.Logf("%d messages stored in %d conversations, %d acknowledged, %d moves between nodes; lost %d, extra %d",
		stored, lagGroups, acked.Load(), moves.Load(), lost, dup)
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// sendMoving sends lagPerUser messages one at a time, each until it is
// acknowledged; every lagMoveEvry messages, and whenever its connection
// is lost or a send goes unanswered (a stalled node), it moves to the
// next node, resuming from its last position, and resends with the same
// client id.
func (c *client) sendMoving(ctx context.Context, nodes []*node, acked, moves *atomic.Int64) {
	for i := range lagPerUser {
		s := protocol.Send{ConversationID: c.conv, ClientID: fmt.Sprintf("%s-%d", c.user, i),
			Type: parley.Text, Text: fmt.Sprintf("%s says %d", c.user, i)}
		for attempt := 0; ; attempt++ {
			if ctx.Err() != nil {
				return
			}
			f, err := c.request(ctx, protocol.OpSend, s)
			if err == nil && f.Type == protocol.TypeReply {
				acked.Add(1)
				break
			}
			if err == nil && f.Error != nil && f.Error.Code == parley.EUNAVAILABLE {
				// The node cannot write now (cut off from its store,
				// or the positions lock held by a stalled node): another
				// one can. A lost connection must not read `internal`.
				err = errConnLost
			} else if err == nil {
				err = fmt.Errorf("%s %+v", f.Type, f.Error)
			}
			if !errors.Is(err, errConnLost) || attempt > 100 {
				c.t.Errorf("client %d: send %s: %v", c.idx, s.ClientID, err)
				return
			}
			moves.Add(1)
			if err := c.reconnect(ctx, nodes); err != nil {
				time.Sleep(100 * time.Millisecond) // every node refused: back off, then retry
			}
		}
		if i%lagMoveEvry == lagMoveEvry-1 {
			moves.Add(1)
			if err := c.reconnect(ctx, nodes); err != nil {
				c.t.Logf("client %d: move: %v", c.idx, err) // the next send retries
			}
		}
		time.Sleep(25 * time.Millisecond) // pace, so the faults land mid-stream
	}
}

// buildParley builds cmd/parley into a temporary directory.
func buildParley(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("no go command to build cmd/parley")
		}
		t.Skip("no go command to build cmd/parley")
	}
	bin := filepath.Join(t.TempDir(), "parley")
	cmd := exec.Command(gobin, "build", "-o", bin, "github.com/parleychat/parley/cmd/parley")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// testNATS is a NATS server of the test's own (embedded), on a port that
// stays the same across stop and start, so the nodes reconnect to it.
type testNATS struct {
	port int
	srv  *natsserver.Server
}

func startNATS(t *testing.T) *testNATS {
	t.Helper()
	n := &testNATS{port: -1}
	n.start(t)
	n.port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *testNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.port) }

func (n *testNATS) start(t *testing.T) {
	t.Helper()
	srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: n.port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	n.srv = srv
}

func (n *testNATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// proc is one `parley serve` process.
type proc struct {
	id   string
	addr string
	cmd  *exec.Cmd
	out  io.ReadCloser
	logs sync.WaitGroup
}

func startProc(t *testing.T, bin, id, dsn, broker, secret string) *proc {
	t.Helper()
	p := &proc{id: id}
	// A free port, closed again for the process to take: a port another
	// process takes in between makes the start fail, loudly.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	ln.Close()
	p.cmd = exec.Command(bin, "serve",
		"--addr", p.addr, "--data-dir", t.TempDir(), "--store", dsn, "--broker", broker,
		"--secret", secret, "--node-id", id, "--log-level", "warn", "--log-format", "text",
		"--heartbeat-interval", "1s", "--heartbeat-timeout", "3s", "--presence-grace", "1s",
		"--conns-per-ip=-1", "--messages-per-second=-1", "--ip-messages-per-second=-1",
		"--connects-per-second=-1", "--reads-per-second=-1", "--presence-per-second=-1",
		"--shutdown-timeout", "5s")
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	p.logs.Add(1)
	go func() { // owned by p: stop closes the pipe and waits
		defer p.logs.Done()
		defer close(exited)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			t.Logf("%s: %s", id, sc.Text())
		}
		io.Copy(io.Discard, pr)
	}()
	t.Cleanup(func() { p.stop(t, pw) })
	deadline := time.Now().Add(waitBound)
	for {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, not an assertion
	}
}

// ready returns the status of the node's /readyz (0 when it does not
// answer).
func (p *proc) ready() int {
	hc := http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get("http://" + p.addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: %v: %v", p.id, sig, err)
	}
}

// stop ends the process (SIGTERM, a graceful shutdown; SIGKILL if that
// takes too long) and waits for it and its log reader.
func (p *proc) stop(t *testing.T, pw *io.PipeWriter) {
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { // joined below
		p.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop in 20 s; killing it", p.id)
		p.cmd.Process.Kill()
		<-done
	}
	pw.Close()
	p.logs.Wait()
}
