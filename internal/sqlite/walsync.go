package sqlite

import (
	"fmt"
	"os"
	"sync/atomic"
)

// The commit's fsync.
//
// The write connection runs with synchronous=NORMAL: in WAL mode SQLite
// then writes a commit's frames to the -wal file without an fsync (it
// still fsyncs the WAL before each checkpoint and the database after it).
// The batcher fsyncs the -wal file itself after each COMMIT of ops
// (fileSyncer.sync), before it publishes the batch's events or answers
// its callers, so an acknowledged write is on disk exactly as with
// synchronous=FULL: the WAL is appended in commit order, so the fsync
// after a commit covers it and every commit before it (an index step's
// too). What differs: it runs where the batcher can wait for it without
// holding a P (walsync_linux.go), and the batch is visible to readers on
// other connections for the length of that fsync before it is durable
// (with FULL, SQLite makes it visible after): a reader may return a
// message that a power loss in that window then takes back, never one
// whose sender was told it is stored.

// fileSyncer fsyncs one file of the database: the -wal file after each
// commit, the database file after each checkpoint (checkpoint.go). Only
// the batcher goroutine uses it (after Open's migrations), and DB.Close
// closes it after the batcher.
type fileSyncer struct {
	f   *os.File // read-only: enough for fsync
	aio *aioSync // nil: fsync(2)
	// aioSyncs and plainSyncs count the fsyncs each way.
	aioSyncs, plainSyncs atomic.Int64
}

// openSyncer opens the file at path (the database, or its -wal file: the
// write connection must be open in WAL mode and have written, as the
// migrations do, so that it exists; SQLite keeps it while a connection is
// open, and reuses it rather than recreate it).
func openSyncer(path string) (*fileSyncer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s to sync it: %w", path, err)
	}
	s := &fileSyncer{f: f}
	if a, err := newAIOSync(); err == nil {
		s.aio = a
	}
	return s, nil
}

// sync makes what was written to the file durable (of the -wal file:
// every commit so far).
func (s *fileSyncer) sync() error {
	if s.aio != nil {
		err := s.aio.fsync(s.f.Fd())
		if err != errNoAIO {
			s.aioSyncs.Add(1)
			return err
		}
		// The kernel takes no fsync request for this file: from now on,
		// fsync(2).
		s.aio.close()
		s.aio = nil
	}
	s.plainSyncs.Add(1)
	return s.f.Sync()
}

func (s *fileSyncer) close() error {
	if s.aio != nil {
		s.aio.close()
	}
	return s.f.Close()
}
