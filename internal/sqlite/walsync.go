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
// (walSyncer.sync), before it publishes the batch's events or answers
// its callers, so an acknowledged write is on disk exactly as with
// synchronous=FULL: the WAL is appended in commit order, so the fsync
// after a commit covers it and every commit before it (an index step's
// too). What differs: it runs where the batcher can wait for it without
// holding a P (walsync_linux.go), and the batch is visible to readers on
// other connections for the length of that fsync before it is durable
// (with FULL, SQLite makes it visible after): a reader may return a
// message that a power loss in that window then takes back, never one
// whose sender was told it is stored.

// walSyncer fsyncs the -wal file. Only the batcher goroutine uses it
// (after Open's migrations), and DB.Close closes it after the batcher.
type walSyncer struct {
	f   *os.File // the -wal file, read-only: enough for fsync
	aio *aioSync // nil: fsync(2)
	// aioSyncs and plainSyncs count the fsyncs each way.
	aioSyncs, plainSyncs atomic.Int64
}

// openWALSyncer opens the -wal file of the database at path. The write
// connection must be open in WAL mode and have written (the migrations
// do), so that the file exists: SQLite keeps it while a connection is
// open, and reuses it rather than recreate it.
func openWALSyncer(path string) (*walSyncer, error) {
	f, err := os.Open(path + "-wal")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open the WAL to sync it: %w", err)
	}
	s := &walSyncer{f: f}
	if a, err := newAIOSync(); err == nil {
		s.aio = a
	}
	return s, nil
}

// sync makes every commit so far durable.
func (s *walSyncer) sync() error {
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

func (s *walSyncer) close() error {
	if s.aio != nil {
		s.aio.close()
	}
	return s.f.Close()
}
