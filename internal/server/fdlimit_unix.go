//go:build unix

package server

import (
	"math"
	"syscall"
)

// fdLimit is the process's soft limit on open files (RLIMIT_NOFILE), 0
// when unknown. Go raises the soft limit to the hard one at start.
func fdLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > math.MaxInt32 {
		return 0
	}
	return int(r.Cur)
}
