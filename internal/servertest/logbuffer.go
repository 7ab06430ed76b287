package servertest

import (
	"bytes"
	"sync"
)

// LogBuffer keeps what a server (or a parley process) logs for a test to
// read while it runs: Write and String are safe for concurrent use. The
// zero value is ready.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (n int, err error) {
	l.locked(func() { n, err = l.b.Write(p) })
	return n, err
}

// String returns all that was written so far.
func (l *LogBuffer) String() (s string) {
	l.locked(func() { s = l.b.String() })
	return s
}

// locked runs f holding l's lock.
func (l *LogBuffer) locked(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f()
}
