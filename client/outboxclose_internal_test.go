package client

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// TestOutboxAddAfterClose: a Send (or Reply, Edit, Resend) that passed
// its check of the client before Close ran, and reaches the outbox once
// Close has emptied it, fails with ErrClosed, as a call after Close
// does. Before, a memory outbox took the message into the queue Close
// had already failed, where nothing would send or fail it: Send returned
// it as Sending with no error, and it stayed Sending for good (Done
// never closed); a file outbox answered "sql: database is closed". The
// test makes that interleaving by calling the outbox as Send does once
// its check has passed.
func TestOutboxAddAfterClose(t *testing.T) {
	for _, file := range []bool{false, true} {
		name := "memory"
		opts := []Option{WithToken("token")}
		if file {
			name = "file"
			opts = append(opts, WithOutboxFile(filepath.Join(t.TempDir(), "outbox.db")))
		}
		t.Run(name, func(t *testing.T) {
			c, err := New("ws://127.0.0.1:1", opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			m := &Message{conversationID: "conv", typ: parley.Text, text: "hi", clientID: "late",
				createdAt: time.Now(), done: make(chan struct{})}
			if err := c.out.add(t.Context(), m); !errors.Is(err, ErrClosed) {
				t.Errorf("a message reaching the closed outbox: %v, want ErrClosed", err)
			}
			if p := c.Pending(); len(p) != 0 {
				t.Errorf("the closed outbox holds %d messages, want none (nothing sends or fails them)", len(p))
			}
		})
	}
}
