//go:build !unix

package server

import "errors"

// rawReads: idleConn is Unix-only; elsewhere connections keep a plain
// bufio reader (see smallBuffers).
const rawReads = false

func readNonblock(fd uintptr, b []byte) (int, error) {
	return 0, errors.New("not supported")
}
