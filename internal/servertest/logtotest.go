package servertest

import (
	"strings"
	"sync"
	"testing"
)

// LogToTest sends a server's log to the test log until Stop (after which
// the test may have ended, and logging to it would panic). Safe for
// concurrent use.
type LogToTest struct {
	T    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *LogToTest) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.T.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Stop drops all that is written from now on.
func (w *LogToTest) Stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}
