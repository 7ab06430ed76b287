package sqlite

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux: the commit's fsync as an asynchronous I/O request (io_submit
// with IOCB_CMD_FSYNC, Linux 4.18+), run by a kernel worker, its end
// signalled on an eventfd that the batcher waits for in the netpoller. A
// goroutine waiting there holds no P, so with GOMAXPROCS=1 the hub and
// the readers run during the fsync; a plain fsync(2) keeps the only P
// until sysmon takes it back, which it does only after one of its ticks
// (up to 10 ms when it has been idle), and nothing else runs meanwhile
// (docs/benchmarks.md, "Fan-out tail on one P"). Where the kernel refuses
// io_setup (no AIO, a seccomp filter), or an fsync request, the syncer
// falls back to fsync(2).

// Asynchronous I/O ABI (linux/aio_abi.h); the same on every
// architecture Go supports (little-endian field order shown).
const (
	iocbCmdFsync  = 2
	iocbFlagResfd = 1
)

type iocb struct {
	data      uint64
	key       uint32
	rwFlags   int32
	opcode    uint16
	reqprio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

type ioEvent struct {
	data, obj uint64
	res, res2 int64
}

// aioSync is one AIO context with its eventfd. Only the batcher
// goroutine uses it (one request at a time).
type aioSync struct {
	ctx uintptr
	ev  *os.File // eventfd, non-blocking: its reads wait in the netpoller
}

func newAIOSync() (*aioSync, error) {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil, e
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
		return nil, err
	}
	return &aioSync{ctx: ctx, ev: os.NewFile(uintptr(fd), "eventfd")}, nil
}

// errNoAIO: the kernel took no fsync request for this file; use fsync(2).
var errNoAIO = errors.New("sqlite: no asynchronous fsync")

// fsync submits an fsync of fd and waits, parked, for its end.
func (a *aioSync) fsync(fd uintptr) error {
	cb := iocb{opcode: iocbCmdFsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(a.ev.Fd())}
	cbs := [1]*iocb{&cb}
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, a.ctx, 1, uintptr(unsafe.Pointer(&cbs[0])))
		if e == unix.EINTR || e == unix.EAGAIN {
			continue
		}
		if e != 0 || n != 1 {
			return errNoAIO
		}
		break
	}
	// The kernel copied the request at io_submit; the eventfd's counter
	// turns non-zero when it ends.
	var buf [8]byte
	if _, err := a.ev.Read(buf[:]); err != nil {
		return fmt.Errorf("sqlite: wait for fsync: %w", err)
	}
	var ev ioEvent
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, a.ctx, 1, 1, uintptr(unsafe.Pointer(&ev)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return fmt.Errorf("sqlite: fsync result: %w", e)
		}
		if n != 1 {
			return errors.New("sqlite: fsync result: no event")
		}
		break
	}
	if ev.res < 0 {
		return unix.Errno(-ev.res)
	}
	return nil
}

func (a *aioSync) close() {
	a.ev.Close()
	unix.Syscall(unix.SYS_IO_DESTROY, a.ctx, 0, 0)
}
