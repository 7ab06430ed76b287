//go:build linux

package server

import (
	"errors"

	"golang.org/x/sys/unix"
)

// pollerOS is the poller's epoll set and the eventfd that wakes its loop
// to stop (registered with id 0).
type pollerOS struct {
	epfd int
	efd  int
}

// pollEvents is how many readiness events one epoll_wait takes.
const pollEvents = 256

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN} // id 0
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &ev); err != nil {
		unix.Close(efd)
		unix.Close(epfd)
		return nil, err
	}
	return &poller{pollerOS: pollerOS{epfd: epfd, efd: efd}}, nil
}

// arm waits for fd to be readable (or hung up), once: EPOLLONESHOT
// disables it after one event until the next arm, so one readiness starts
// one reader, and level triggering reports bytes that came before the arm.
func (p *poller) arm(fd int, id uint64, add bool) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT}
	setPollID(&ev, id)
	op := unix.EPOLL_CTL_MOD
	if add {
		op = unix.EPOLL_CTL_ADD
	}
	return unix.EpollCtl(p.epfd, op, fd, &ev)
}

// setPollID and pollID keep a registration's id in the event's 64-bit
// user data (Fd and Pad are its two halves on every Linux architecture).
func setPollID(ev *unix.EpollEvent, id uint64) {
	ev.Fd, ev.Pad = int32(uint32(id)), int32(uint32(id>>32))
}

func pollID(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// loop waits for readiness and starts the readers, until stopLoop. It
// blocks its thread in epoll_wait (the runtime hands the P to other
// goroutines meanwhile).
func (p *poller) loop() {
	defer p.wg.Done()
	events := make([]unix.EpollEvent, pollEvents)
	ids := make([]uint64, 0, pollEvents)
	var regs []*pollReg
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			panic("server: epoll_wait: " + err.Error()) // EBADF/EINVAL: a bug here
		}
		ids = ids[:0]
		for i := range events[:n] {
			id := pollID(&events[i])
			if id == 0 {
				return // stopLoop
			}
			ids = append(ids, id)
		}
		regs = p.ready(ids, regs)
	}
}

// stopLoop wakes the loop to return.
func (p *poller) stopLoop() {
	var one = [8]byte{1}
	for {
		_, err := unix.Write(p.efd, one[:])
		if !errors.Is(err, unix.EINTR) {
			return
		}
	}
}

// release closes the descriptors once the loop returned.
func (p *poller) release() {
	unix.Close(p.efd)
	unix.Close(p.epfd)
}
