//go:build linux

package server

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// pollerOS is the poller's epoll set, as a non-blocking file the Go
// runtime's own network poller waits on (an epoll set is readable while
// it has events): the loop is an ordinary goroutine parked in the runtime,
// not a thread blocked in epoll_wait, so a wake-up costs no thread switch
// or P hand-off.
type pollerOS struct {
	epfd int
	f    *os.File // owns epfd
	rc   syscall.RawConn
}

// pollEvents is how many readiness events one epoll_wait takes.
const pollEvents = 256

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		return nil, err
	}
	f := os.NewFile(uintptr(epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &poller{pollerOS: pollerOS{epfd: epfd, f: f, rc: rc}}, nil
}

// watch adds fd to the epoll set, edge-triggered: every arrival of
// bytes (and the end of the stream) is one event, with no re-arm per
// message; a socket that already has bytes when added gives one event
// at once. See pollReg for how an event is never lost.
func (p *poller) watch(fd int, id uint64) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET}
	setPollID(&ev, id)
	return unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev)
}

// setPollID and pollID keep a registration's id in the event's 64-bit
// user data (Fd and Pad are its two halves on every Linux architecture).
func setPollID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func pollID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// loop waits for readiness and starts the readers, until stopLoop closes
// the epoll set.
func (p *poller) loop() {
	defer p.wg.Done()
	events := make([]unix.EpollEvent, pollEvents)
	ids := make([]uint64, 0, pollEvents)
	var regs []*pollReg
	// Read tries first and waits for the set to be readable only when it
	// has nothing (edge-triggered in the runtime: nothing is missed). The
	// callback and what it sets are made once: made in the loop they were
	// three allocations per wait, and a fan-out wakes the loop for every
	// publisher's send and every burst of pings.
	var n int
	var werr error
	wait := func(fd uintptr) bool {
		n, werr = unix.EpollWait(int(fd), events, 0)
		return n > 0 || (werr != nil && !errors.Is(werr, unix.EINTR))
	}
	for {
		err := p.rc.Read(wait)
		if err != nil {
			return // stopLoop closed the set
		}
		if werr != nil {
			// EBADF or EINVAL: a bug here, not a client's doing. Not a
			// panic (that would stop the process): give every parked
			// connection back its reader goroutine, park no more, and
			// end the loop.
			p.fail(werr)
			return
		}
		woke := monoNow() // one clock reading per wait, for all its readers
		ids = ids[:0]
		for i := range events[:n] {
			id := pollID(&events[i])
			if events[i].Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				id |= pollHup
			}
			ids = append(ids, id)
		}
		regs = p.ready(ids, regs, woke)
	}
}

// stopLoop ends the loop: closing the set ends its wait.
func (p *poller) stopLoop() { p.f.Close() }

// release: the set was closed by stopLoop.
func (p *poller) release() {}
