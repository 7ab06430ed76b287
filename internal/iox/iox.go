// Package iox has the small I/O helpers the server and the load tool share.
package iox

import "io"

// AppendAll reads r to EOF, appending to b, and returns the extended
// slice: it reuses b's capacity, so a caller that keeps the result reads
// message after message without allocating (io.ReadAll allocates every
// time). On an error it returns what was read so far with the error.
func AppendAll(b []byte, r io.Reader) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}
