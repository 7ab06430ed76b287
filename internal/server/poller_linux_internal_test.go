//go:build linux

package server

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// readResumer is a parked connection's reader over a socket in the
// poller's epoll set: it reads the byte that woke it, parks again and
// says so on done.
type readResumer struct {
	r    *pollReg
	fd   int
	buf  [8]byte
	done chan struct{}
}

func (x *readResumer) resume(int64) {
	_, _ = unix.Read(x.fd, x.buf[:])
	if got := x.r.park(nil, x); got != parkDone {
		panic("park after a resume did not park")
	}
	x.done <- struct{}{}
}

// TestPollerLoopAllocs: a round of the poller's loop (an epoll wait that
// finds a readable connection and starts its reader) allocates nothing:
// it runs for every publisher's send and every burst of pings in a
// fan-out, so an allocation per round is an allocation per message.
func TestPollerLoopAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	p, err := newPoller()
	if err != nil {
		t.Skip("no epoll here:", err)
	}
	p.regs = make(map[uint64]*pollReg)
	p.readers.init(maxIdleReaders)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	defer unix.Close(fds[0])
	x := &readResumer{fd: fds[0], done: make(chan struct{}, 1)}
	x.r = &pollReg{p: p, added: true, run: x, id: 1}
	x.r.state.Store(pollParked)
	p.regs[1] = x.r
	if err := p.watch(fds[0], 1); err != nil {
		t.Fatal(err)
	}
	p.wg.Add(1)
	go p.loop()
	defer func() {
		p.stopLoop()
		p.wg.Wait()
		p.readers.close()
	}()
	b := []byte{1}
	edge := func() {
		if _, err := unix.Write(fds[1], b); err != nil {
			t.Fatal(err)
		}
		<-x.done
	}
	for range 10 { // the reader goroutine starts and waits in the pool
		edge()
	}
	const rounds = 2000
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range rounds {
		edge()
	}
	runtime.ReadMemStats(&m1)
	if per := float64(m1.Mallocs-m0.Mallocs) / rounds; per >= 0.5 {
		t.Errorf("%.2f allocations per round of the poller's loop, want none", per)
	}
}
