package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/webhook"
)

// runAsParley, set to 1 in a child's environment, makes the test binary
// run main (TestMain).
const runAsParley = "PARLEY_TEST_RUN_AS_PARLEY"

// parleyProc is `parley serve` running as a child process.
type parleyProc struct {
	cmd  *exec.Cmd
	addr string
	done chan struct{}
}

var servingLine = regexp.MustCompile(`parley serving.* addr=http://(\S+)`)

// startParley runs the test binary as `parley serve args...` and returns
// once it serves. The test ends it (kill or SIGTERM) and waits for it.
func startParley(t *testing.T, args ...string) *parleyProc {
	t.Helper()
	return startParleyEnv(t, nil, args...)
}

// startParleyEnv is startParley with env added to the child's environment.
func startParleyEnv(t *testing.T, env []string, args ...string) *parleyProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0", "--log-level", "info"}, args...)...)
	cmd.Env = append(append(os.Environ(), runAsParley+"=1"), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &parleyProc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	// Owned by p: it ends when the child's stderr closes (the child
	// exited), before cmd.Wait in done.
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
			t.Logf("parley: %s", sc.Text())
		}
		cmd.Wait()
	}()
	t.Cleanup(func() { p.kill(); <-p.done })
	select {
	case p.addr = <-addr:
	case <-p.done:
		t.Fatal("parley exited before serving")
	case <-time.After(30 * time.Second):
		t.Fatal("parley did not serve within 30 s")
	}
	return p
}

func (p *parleyProc) kill() { p.cmd.Process.Signal(syscall.SIGKILL) }

// TestWebhooksSurviveKill: parley is killed with SIGKILL while most of
// its deliveries are waiting for a failing receiver; restarted on the
// same data, it delivers every one of them. Repeats carry the same id
// and body; a conversation's deliveries are first answered in order.
func TestWebhooksSurviveKill(t *testing.T) {
	const secret, n, upFirst = "kill-test-secret-0123456789", 30, 10
	var (
		mu     sync.Mutex
		down   = false               // refusing; set after upFirst deliveries
		healed = false               // after the restart: never down again
		bodies = map[string][]byte{} // id -> body
		okIDs  []string              // ids answered 200, first time each, in order
		seen   = map[string]int{}    // id -> attempts
		calls  = make(chan struct{}, 1)
	)
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Errorf("signature: %v", err)
		}
		id := r.Header.Get(webhook.HeaderEventID)
		mu.Lock()
		defer mu.Unlock()
		if prev, ok := bodies[id]; ok && !bytes.Equal(prev, body) {
			t.Errorf("id %s came with two bodies:\n%s\n%s", id, prev, body)
		}
		bodies[id] = body
		seen[id]++
		select {
		case calls <- struct{}{}:
		default:
		}
		if !healed && !slices.Contains(okIDs, id) && len(okIDs) >= upFirst {
			down = true
		}
		if down {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		okIDs = append(okIDs, id)
	}))
	defer rx.Close()

	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--messages-per-second=-1", "--ip-messages-per-second=-1",
		"--webhook", "url=" + rx.URL + ",events=message.new,secret=" + secret + ",name=rx",
		"--webhook-allow-private", "--webhook-backoff-base", "20ms", "--webhook-backoff-max", "100ms"}
	p := startParley(t, args...)
	mint := func(user string) string {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"token", "mint", "--user", user, "--data-dir", dir}, nil, &out, &out); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	alice, bob := mint("alice"), mint("bob")
	call := func(tok, method, path, body string) []byte {
		t.Helper()
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		return servertest.Call(t, method, "http://"+p.addr+path, tok, b, 0)
	}
	call(bob, "GET", "/v1/me", "")
	var conv struct{ ID string }
	json.Unmarshal(call(alice, "POST", "/v1/conversations/direct", `{"user_id":"bob"}`), &conv)
	var positions []string
	for i := range n {
		call(alice, "POST", "/v1/conversations/"+conv.ID+"/messages", fmt.Sprintf(`{"client_id":"c%d","text":"m%d"}`, i, i))
	}
	// Kill once the receiver is refusing: the first upFirst were
	// delivered, the rest are in the outbox (or not yet enqueued).
	deadline := time.After(30 * time.Second)
	for {
		mu.Lock()
		d := down
		mu.Unlock()
		if d {
			break
		}
		select {
		case <-calls:
		case <-deadline:
			t.Fatal("the receiver never went down")
		}
	}
	p.kill()
	<-p.done
	mu.Lock()
	delivered := len(okIDs)
	down, healed = false, true
	mu.Unlock()
	if delivered >= n {
		t.Fatalf("all %d delivered before the kill: the test proves nothing", delivered)
	}

	startParley(t, args...)
	deadline = time.After(60 * time.Second)
	for {
		mu.Lock()
		got := len(okIDs)
		mu.Unlock()
		if got >= n {
			break
		}
		select {
		case <-calls:
		case <-deadline:
			t.Fatalf("after the restart: %d of %d delivered", got, n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, id := range okIDs {
		var pl struct {
			Event struct{ Message struct{ Text string } }
		}
		json.Unmarshal(bodies[id], &pl)
		positions = append(positions, pl.Event.Message.Text)
	}
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprint("m", i)
	}
	if !slices.Equal(positions, want) {
		t.Fatalf("delivered (first answer per id, in order) %v, want %v", positions, want)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct ids, want %d", len(seen), n)
	}
	t.Logf("%d delivered before the kill, %d after; %d attempts in all", delivered, n-delivered, total(seen))
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
