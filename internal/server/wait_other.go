//go:build !unix

package server

import "errors"

// rawReads: waiting without a buffer is Unix-only; elsewhere the reader
// keeps its buffer (see wsConn).
const rawReads = false

func peekNonblock(fd uintptr, b []byte) error { return errors.New("not supported") }
