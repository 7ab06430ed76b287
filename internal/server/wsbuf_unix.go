//go:build unix

package server

import "syscall"

// rawReads tells whether idleConn can wait for a readable socket with no
// buffer (syscall.RawConn and non-blocking reads).
const rawReads = true

// readNonblock reads from a non-blocking socket; syscall.EAGAIN when it
// has nothing.
func readNonblock(fd uintptr, b []byte) (int, error) {
	for {
		n, err := syscall.Read(int(fd), b)
		if err == syscall.EINTR {
			continue
		}
		return max(n, 0), err
	}
}
