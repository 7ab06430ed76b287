//go:build unix

package client

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/parleychat/parley"
)

// lockOutbox takes the exclusive lock of the outbox file at path: an
// flock(2) on path+".lock", without waiting. The lock is held until the
// returned file is closed (outbox.close), or the process ends (the kernel
// drops it then, so a crash leaves no stale lock to clean up).
//
// The lock is on a file of its own, not on the SQLite file: SQLite uses
// POSIX record locks on its files, and on NFS (and some BSDs) flock is
// emulated with the same locks, so a whole-file flock there would meet
// SQLite's own. The .lock file stays after Close: removing it would let a
// client that opened it before the removal and one that opens it after
// both hold "the" lock.
//
// flock locks belong to an open file, not to a process, so a second
// Client in the same process on the same file is refused too.
func lockOutbox(path string) (*os.File, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("client: outbox file lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, coded(ErrOutboxInUse, parley.Errorf(parley.ECONFLICT,
				"the outbox file %s is in use by another client (another process, or another Client in this one): one client at a time may use it", path))
		}
		return nil, fmt.Errorf("client: outbox file lock %s: %w", name, err)
	}
	return f, nil
}
