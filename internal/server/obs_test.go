package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// waitMetric waits until metric (with labels) reaches at least want:
// connections end, and count their close, after the client saw the close.
func waitMetric(t *testing.T, srv *servertest.Server, name string, labels map[string]string, want float64) {
	t.Helper()
	for deadline := time.Now().Add(testWait); srv.Server.MetricSum(name, labels) < want; runtime.Gosched() {
		if time.Now().After(deadline) { // a bound on a broken run, not a timing assertion
			t.Fatalf("%s%v = %v, want >= %v", name, labels, srv.Server.MetricSum(name, labels), want)
		}
	}
}

// TestObservabilityMetrics drives each path once and checks the metric
// that watches it moved: send-to-ack on both transports, delivery lag,
// the store's send runs and commit waits, resume size, errors by code,
// auth failures and closes by code.
func TestObservabilityMetrics(t *testing.T) {
	srv := startLimited(t, nil)
	alice, bob := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	a, b, cv := directPair(t, srv)
	a.send(cv.ID, uuid.NewString(), "over ws")
	b.event(parley.EventNewMessage)
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+cv.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","text":"over http"}`); r.status != 201 {
		t.Fatalf("HTTP send: %d %s", r.status, r.body)
	}
	for name, labels := range map[string]map[string]string{
		"parley_send_ack_seconds":           {"transport": "ws"},
		"parley_event_delivery_lag_seconds": nil,
		"parley_store_send_batch_size":      nil,
		"parley_store_send_commit_seconds":  nil,
	} {
		waitMetric(t, srv, name, labels, 1)
	}
	waitMetric(t, srv, "parley_send_ack_seconds", map[string]string{"transport": "http"}, 1)
	waitMetric(t, srv, "parley_store_send_batch_size", nil, 2)

	// A resume that replays the two messages (and the conversation).
	zero := int64(0)
	connect(t, srv, bob, &zero).waitFor(func(f protocol.Frame) bool { return f.Type == protocol.TypeResumed })
	waitMetric(t, srv, "parley_resume_events", nil, 1)

	// A forged token, over HTTP and in a hello; a failed login.
	if r := httpDo(t, srv, "GET", "/v1/me", "forged", ""); r.status != 401 {
		t.Fatalf("forged token: %d", r.status)
	}
	c := dial(t, srv, nil)
	c.sendOp(protocol.OpHello, "", protocol.Hello{Token: "forged"})
	if f := c.next(); f.Type != protocol.TypeError {
		t.Fatalf("hello with a forged token: %+v", f)
	}
	if code := c.closeCode(); int(code) != protocol.CloseUnauthorized {
		t.Fatalf("close %d, want 4100", code)
	}
	if r := httpDo(t, srv, "POST", "/v1/auth/login", "", `{"username":"nobody","password":"not this one"}`); r.status != 401 {
		t.Fatalf("bad login: %d", r.status)
	}
	waitMetric(t, srv, "parley_auth_failures_total", map[string]string{"kind": "token"}, 2)
	waitMetric(t, srv, "parley_auth_failures_total", map[string]string{"kind": "login"}, 1)
	waitMetric(t, srv, "parley_errors_total", map[string]string{"code": "unauthorized"}, 3)
	waitMetric(t, srv, "parley_closes_total", map[string]string{"code": "4100"}, 1)

	// An error frame on an open connection.
	if code := a.fail(protocol.OpHistory, protocol.History{ConversationID: "nope"}); code != parley.ENOTFOUND {
		t.Fatalf("history of an unknown conversation: %s", code)
	}
	waitMetric(t, srv, "parley_errors_total", map[string]string{"code": "not_found"}, 1)

	// A client that leaves: counted as none (no close asked by the server).
	b.ws.CloseNow()
	waitMetric(t, srv, "parley_closes_total", map[string]string{"code": "none"}, 1)
}

// TestObservabilityLogs: connections and auth failures at debug, and a
// shutdown's drain progress at info.
func TestObservabilityLogs(t *testing.T) {
	var logs servertest.LogBuffer
	lg := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.Logger = lg }))
	connect(t, srv, srv.Token(t, "alice", "Alice"), nil)
	httpDo(t, srv, "GET", "/v1/me", "forged", "")
	httpDo(t, srv, "POST", "/v1/auth/login", "", `{"username":"nobody","password":"not this one"}`)
	ctx, cancel := context.WithTimeout(context.Background(), testWait)
	defer cancel()
	if err := srv.Server.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	for _, want := range []string{
		"level=DEBUG msg=connected", "msg=\"auth: token refused\"", "msg=\"auth: login failed\"",
		"level=INFO msg=\"shutdown: draining\" node=", "msg=\"shutdown: told connections to go away\"",
		"connections=1", "msg=\"shutdown: connections closed\"", "level=DEBUG msg=disconnected",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log has no %q:\n%s", want, out)
		}
	}
}

// TestGrafanaDashboardMetrics: every metric docs/grafana-dashboard.json
// queries is in the server's /metrics output.
func TestGrafanaDashboardMetrics(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) { c.MetricsToken = "m" }))
	r := httpDo(t, srv, "GET", "/metrics", "m", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	exposed := map[string]bool{}
	for _, line := range strings.Split(string(r.body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		exposed[line[:strings.IndexAny(line, "{ ")]] = true
	}
	nameRE := regexp.MustCompile(`\b(?:parley|go|process)_[a-z0-9_]+\b`)
	var queried []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			names := nameRE.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: %q queries no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !exposed[n] {
					t.Errorf("panel %q queries %s, which /metrics does not have", p.Title, n)
				}
				if !slices.Contains(queried, n) {
					queried = append(queried, n)
				}
			}
		}
	}
	if len(queried) < 10 {
		t.Fatalf("the dashboard queries only %v", queried)
	}
}

// TestStoreBatchMetrics: the store's batcher reports every committed
// batch to the server's histograms: a send moves the batch count, the
// COMMIT time and the transaction time (the ops in them are checked per
// engine by storetest's BatchObserver).
func TestStoreBatchMetrics(t *testing.T) {
	srv := startLimited(t, nil)
	alice := srv.Token(t, "alice", "Alice")
	srv.Token(t, "bob", "Bob")
	names := []string{"parley_store_batch_ops", "parley_store_commit_seconds", "parley_store_batch_seconds"}
	before := map[string]float64{}
	for _, n := range names {
		before[n] = srv.Server.MetricSum(n, nil)
	}
	// And each stage of parley_store_stage_seconds (the store is SQLite:
	// every stage, the WAL fsync's too).
	stages := []string{"queued", "sql", "commit", "sync", "answer"}
	stageBefore := map[string]float64{}
	for _, st := range stages {
		stageBefore[st] = srv.Server.MetricSum("parley_store_stage_seconds", map[string]string{"stage": st})
	}
	if before[names[0]] < 1 {
		t.Fatalf("creating two users committed no reported batch: %v", before)
	}
	r := httpDo(t, srv, "POST", "/v1/conversations/direct", alice, `{"user_id":"bob"}`)
	if r.status != 201 && r.status != 200 {
		t.Fatalf("create direct: %d %s", r.status, r.body)
	}
	var cv parley.Conversation
	if err := json.Unmarshal(r.body, &cv); err != nil {
		t.Fatal(err)
	}
	if r := httpDo(t, srv, "POST", "/v1/conversations/"+cv.ID+"/messages", alice, `{"client_id":"`+uuid.NewString()+`","text":"hi"}`); r.status != 201 {
		t.Fatalf("HTTP send: %d %s", r.status, r.body)
	}
	// The batcher reports a batch before it answers its callers, so the
	// two writes are counted by the time the replies arrived.
	for _, n := range names {
		if got := srv.Server.MetricSum(n, nil); got < before[n]+2 {
			t.Errorf("%s: %v batches before, %v after two writes", n, before[n], got)
		}
	}
	for _, st := range stages {
		if got := srv.Server.MetricSum("parley_store_stage_seconds", map[string]string{"stage": st}); got < stageBefore[st]+2 {
			t.Errorf("parley_store_stage_seconds{stage=%q}: %v samples before, %v after two writes", st, stageBefore[st], got)
		}
	}
}
