package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Checkpoints.
//
// In WAL mode committed pages go to the -wal file; a checkpoint copies them
// back into the database file (and fsyncs it) so the WAL can start over.
// SQLite runs one inside the COMMIT that takes the WAL past
// walAutocheckpoint pages, on the committing connection: on the batcher's,
// where it delays every write waiting for that batch. So a checkpointer
// goroutine runs them on a connection of its own after commits, at most
// once every checkpointInterval, in PASSIVE mode (it never blocks the
// writer or readers), and the writer's own checkpoint finds little left to
// copy.
//
// The writer keeps its automatic checkpoint all the same: the WAL starts
// over only when a write transaction begins with every frame copied back,
// which a checkpoint running beside a busy writer rarely achieves (the
// writer has committed more by the time it ends), so without it the WAL
// grows without bound under steady load (85 MB for 20k messages in a
// test). Durability does not depend on any of this: a commit is fsynced
// in the WAL before it is acknowledged.
//
// Why checkpoints are rare: a checkpoint copies each page once however
// many commits rewrote it, and the send path rewrites the same pages all
// the time (the leaves of the per-conversation indexes, the conversations
// and members rows, the tail of each table). With SQLite's 1000 pages and
// a checkpoint every 200 ms, the writer checkpointed after nearly every
// large batch and copied most of its pages again (pread from the WAL,
// pwrite to the file, an fsync): about a sixth of the store's CPU in
// BenchmarkSendMessagesRooms. With 10,000 pages and a checkpoint a second
// the same benchmark makes about a fifth fewer pwrite and two thirds fewer
// pread calls per message (docs/benchmarks.md). The price is a WAL of up
// to about 40 MB (at 4 KiB pages) that readers look pages up in (SQLite's
// WAL index: hash tables in shared memory) and that a restart after a crash
// reads once.

// checkpointInterval bounds how often the checkpointer runs.
const checkpointInterval = time.Second

// walAutocheckpoint is the write connection's wal_autocheckpoint: the WAL
// size in pages past which a commit also checkpoints (SQLite's default:
// 1000). A variable only so that a test can make the WAL start over
// sooner; nothing else changes it.
var walAutocheckpoint = 10000

// checkpointer runs PASSIVE checkpoints on its own connection. DB owns it:
// DB.Close stops it (after the batcher) and waits for it.
type checkpointer struct {
	db   *sql.DB       // one connection, only for checkpoints
	kick chan struct{} // a commit happened; buffered 1, never blocks the batcher
	stop chan struct{}
	wg   sync.WaitGroup
}

func newCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: make(chan struct{})}
	c.wg.Add(1)
	go c.loop()
	return c
}

// committed tells the checkpointer that the WAL grew. It never blocks.
func (c *checkpointer) committed() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer c.wg.Done()
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		}
		// A failed checkpoint (busy, say) is retried after the next
		// commit; the WAL stays correct meanwhile, only longer.
		_, _ = c.db.ExecContext(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
		t := time.NewTimer(checkpointInterval)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// close stops the goroutine, waits for it and closes its connection; the
// last connection to close checkpoints what is left.
func (c *checkpointer) close() error {
	close(c.stop)
	c.wg.Wait()
	return c.db.Close()
}
