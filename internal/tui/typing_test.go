package tui

import (
	"context"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
)

// A keystroke's typing start runs on a command goroutine and may run after
// the Enter that sent its line (pasted text, a busy machine): it must then
// stay silent, or the other side shows "alice is typing…" under the message
// just sent until the indicator expires. The keystrokes' commands are held
// here until the message has reached bob, then run; a message sent after
// them bounds the wait (typing is ephemeral, so a start sent before it
// reaches bob first).
func TestNoTypingAfterSend(t *testing.T) {
	srv := servertest.Start(t)
	lookup := adminLookup(t, srv)
	alice := connected(t, srv, "alice", "alice", lookup)
	bobToken := srv.Token(t, "bob", "bob")
	alice.openDirect("bob")
	alice.enter("hello bob", "alice: hello bob ✓")
	conv := alice.m.open

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	bob := servertest.Connect(ctx, t, srv.URL, client.WithToken(bobToken))
	var (
		mu  sync.Mutex
		got []string
	)
	bob.AddEventHandler("test", func(ev client.Event) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case client.NewMessage:
			got = append(got, "message "+ev.Message.Text)
		case client.TypingStarted:
			got = append(got, "typing "+ev.UserID)
		}
	})
	seen := func(want string) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range got {
			if e == want {
				return true
			}
		}
		return false
	}
	waitSeen := func(want string) {
		t.Helper()
		for !seen(want) {
			select {
			case <-ctx.Done():
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("bob never got %q; got %q", want, got)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}

	var held []tea.Cmd
	for _, r := range "hi" {
		_, cmd := alice.m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
		held = append(held, cmd)
	}
	alice.press(tea.KeyPressMsg{Code: tea.KeyEnter})
	waitSeen("message hi")
	var wg sync.WaitGroup
	for _, cmd := range held {
		runAll(&wg, cmd)
	}
	wg.Wait() // every typing call has had its answer from the server
	if _, err := alice.c.Send(ctx, conv, "sync"); err != nil {
		t.Fatal(err)
	}
	waitSeen("message sync")

	mu.Lock()
	defer mu.Unlock()
	after := false
	for _, e := range got {
		switch {
		case e == "message hi":
			after = true
		case after && e == "typing alice":
			t.Fatalf("bob was told alice is typing after her message was sent: %q", got)
		}
	}
}

// runAll runs cmd and the commands of any batch it returns, each on a
// goroutine wg waits for, and drops their messages.
func runAll(wg *sync.WaitGroup, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if batch, ok := cmd().(tea.BatchMsg); ok {
			for _, c := range batch {
				runAll(wg, c)
			}
		}
	}()
}
