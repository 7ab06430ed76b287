//go:build unix

package server

import "syscall"

// rawReads tells whether wsConn can wait for a readable socket holding no
// buffer (syscall.RawConn and a non-blocking peek).
const rawReads = true

// peekNonblock peeks at the socket without taking a byte: nil when it has
// one (or has ended, or failed: the read after tells which),
// syscall.EAGAIN when it has none yet.
func peekNonblock(fd uintptr, b []byte) error {
	for {
		_, _, err := syscall.Recvfrom(int(fd), b, syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return err
		}
		return nil
	}
}
