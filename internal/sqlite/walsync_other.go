//go:build !linux

package sqlite

import "errors"

// Elsewhere than Linux the WAL syncer runs fsync(2) (walsync.go).
type aioSync struct{}

var errNoAIO = errors.New("sqlite: no asynchronous fsync")

func newAIOSync() (*aioSync, error) { return nil, errNoAIO }

func (*aioSync) fsync(uintptr) error { return errNoAIO }

func (*aioSync) close() {}
