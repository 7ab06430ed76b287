package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// TestServeCluster: two `parley serve` nodes on one PostgreSQL and one
// NATS, node A configured through PARLEY_* environment variables and node
// B through flags' struct. A user registered on A logs in on B (shared
// store), and a message sent over HTTP to A reaches a WebSocket on B (the
// NATS broker).
func TestServeCluster(t *testing.T) {
	dsn := pgtest.Schema(t)
	natsURL := natstest.URL(t)
	broker := natsURL + "?subject=" + natstest.Subject(t)
	secret := strings.Repeat("s3cret-", 6)

	// Node A: `parley serve` with its configuration in the environment.
	t.Setenv("PARLEY_STORE", dsn)
	t.Setenv("PARLEY_BROKER", broker)
	t.Setenv("PARLEY_SECRET", secret)
	t.Setenv("PARLEY_NODE_ID", "a")
	t.Setenv("PARLEY_ADDR", "127.0.0.1:0")
	t.Setenv("PARLEY_DATA_DIR", t.TempDir())
	t.Setenv("PARLEY_LOG_LEVEL", "info")
	ctx, cancel := context.WithCancel(context.Background())
	logA := &servertest.LogBuffer{}
	runDone := make(chan error, 1)
	go func() { runDone <- run(ctx, []string{"serve"}, nil, logA, logA) }() // waited for below
	defer func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("node A: %v", err)
		}
	}()
	addrRE := regexp.MustCompile(`"parley serving" addr=http://(\S+)`)
	var addrA string
	for deadline := time.Now().Add(30 * time.Second); addrA == ""; {
		if m := addrRE.FindStringSubmatch(logA.String()); m != nil {
			addrA = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("node A did not start:\n%s", logA.String())
		} else {
			time.Sleep(20 * time.Millisecond) // a poll interval, not an assertion
		}
	}

	// Node B: the same store, broker and secret, set in the struct.
	var logB bytes.Buffer
	b := NewMain(ServeCmd{
		Addr: "127.0.0.1:0", DataDir: t.TempDir(), LogLevel: "warn", LogFormat: "text",
		Store: dsn, Broker: broker, Secret: secret, NodeID: "b",
		ShutdownTimeout: 5 * time.Second, PresenceGrace: time.Second, ResumeLimit: 100,
		HeartbeatInterval: 4 * time.Second, HeartbeatTimeout: 9 * time.Second, SendQueueBytes: 256 << 10,
		MessagesPerSecond: -1, IPMessagesPerSecond: -1, TypingPerSecond: -1, ConnectsPerSecond: -1,
		MessageBurst: 1, IPMessageBurst: 1, TypingBurst: 1, ConnectBurst: 1,
	}, &streams{out: &logB, err: &logB})
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	post := func(addr, path, token string, body any, out any) {
		t.Helper()
		raw, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", "http://"+addr+path, bytes.NewReader(raw))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			var e bytes.Buffer
			e.ReadFrom(resp.Body)
			t.Fatalf("POST %s on %s: %s %s", path, addr, resp.Status, e.String())
		}
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	type session struct {
		Token string      `json:"token"`
		User  parley.User `json:"user"`
	}
	var ann, bob, bobOnB session
	post(addrA, "/v1/auth/register", "", map[string]string{"username": "ann", "password": "correct horse"}, &ann)
	post(addrA, "/v1/auth/register", "", map[string]string{"username": "bob", "password": "battery staple"}, &bob)
	post(b.Addr, "/v1/auth/login", "", map[string]string{"username": "bob", "password": "battery staple"}, &bobOnB)
	var conv parley.Conversation
	post(addrA, "/v1/conversations/direct", ann.Token, map[string]string{"user_id": bob.User.ID}, &conv)

	// Bob listens on B.
	wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer wcancel()
	ws, _, err := websocket.Dial(wctx, "ws://"+b.Addr+protocol.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	hello, _ := json.Marshal(protocol.Hello{Token: bobOnB.Token})
	req, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, Data: hello})
	if err := ws.Write(wctx, websocket.MessageText, req); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, wctx, ws); f.Type != protocol.TypeWelcome {
		t.Fatalf("got %s, want welcome", f.Type)
	}

	// Ann sends on A.
	var sent parley.Message
	post(addrA, "/v1/conversations/"+conv.ID+"/messages", ann.Token,
		map[string]string{"client_id": "c1", "type": "text", "text": "across nodes"}, &sent)
	for {
		f := readFrame(t, wctx, ws)
		if f.Type != protocol.TypeEvent {
			continue
		}
		var e parley.Event
		if err := json.Unmarshal(f.Data, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == parley.EventNewMessage {
			if e.Message == nil || e.Message.ID != sent.ID || e.Message.Text != "across nodes" {
				t.Fatalf("bob on B got %+v, want the message ann sent on A", e)
			}
			break
		}
	}
}

func readFrame(t *testing.T, ctx context.Context, ws *websocket.Conn) protocol.Frame {
	t.Helper()
	_, b, err := ws.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var f protocol.Frame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}
