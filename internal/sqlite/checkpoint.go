package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Checkpoints.
//
// In WAL mode committed pages go to the -wal file; a checkpoint copies them
// back into the database file (and fsyncs it) so the WAL can start over.
// SQLite runs one inside the COMMIT that takes the WAL past
// walAutocheckpoint pages, on the committing connection: on the batcher's,
// where it delays every write waiting for that batch. So the batcher runs
// them on a connection of its own between batches, at most once every
// checkpointInterval, in PASSIVE mode (it never blocks readers), and the
// writer's own checkpoint finds little left to copy.
//
// The fsyncs around a checkpoint are the batcher's, as a commit's are
// (walsync.go): the checkpoint connection runs with synchronous=OFF, and
// the batcher fsyncs the WAL before it (every frame the checkpoint may
// copy is durable first) and the database file after it, before its next
// transaction, the only one that may start the WAL over. That is the
// order SQLite keeps with synchronous on, with the waits where no P is
// held: on one P a checkpoint's fsync of the database file kept the P for
// up to 8-15 ms (docs/benchmarks.md). One difference: SQLite records the
// copy as done (readers then read those pages from the file) before the
// fsync that follows it, not after; should that fsync fail, the batch that
// follows is failed instead of starting the WAL over.
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

// checkpointInterval bounds how often the batcher checkpoints. A
// variable only so that a test can checkpoint after every batch.
var checkpointInterval = time.Second

// walAutocheckpoint is the write connection's wal_autocheckpoint: the WAL
// size in pages past which a commit also checkpoints (SQLite's default:
// 1000). A variable only so that a test can make the WAL start over
// sooner; nothing else changes it.
var walAutocheckpoint = 10000

// checkpointer runs PASSIVE checkpoints on its own connection. Only the
// batcher goroutine uses it; DB.Close closes it after the batcher.
type checkpointer struct {
	db      *sql.DB      // one connection, only for checkpoints; synchronous=OFF
	file    *fileSyncer  // the database file
	last    time.Time    // the last checkpoint's start
	pending bool         // commits since it
	failed  error        // the database file's last fsync failed: see ready
	runs    atomic.Int64 // checkpoints run (tests)
}

// committed tells the checkpointer that the WAL grew.
func (c *checkpointer) committed() { c.pending = true }

// due reports whether a checkpoint should run now.
func (c *checkpointer) due(now time.Time) bool {
	return c.pending && now.Sub(c.last) >= checkpointInterval
}

// run fsyncs the WAL (wal), checkpoints, and fsyncs the database file.
// A failed checkpoint (busy, say) is retried after the next commit; the
// WAL stays correct meanwhile, only longer. It returns the database
// file's fsync error: until ready succeeds, no write may begin.
func (c *checkpointer) run(ctx context.Context, wal *fileSyncer, now time.Time) error {
	c.last, c.pending = now, false
	if err := wal.sync(); err != nil {
		return nil // nothing copied: the next one tries again
	}
	c.runs.Add(1)
	_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
	c.failed = c.file.sync()
	return c.failed
}

// ready returns nil when a write transaction may begin (and so start the
// WAL over): the database file's fsync after the last checkpoint
// succeeded, or does now, tried again.
func (c *checkpointer) ready() error {
	if c.failed != nil {
		if err := c.file.sync(); err != nil {
			return fmt.Errorf("sqlite: fsync the database after a checkpoint: %w", err)
		}
		c.failed = nil
	}
	return nil
}

// close closes its connection and file; the last connection to close
// checkpoints what is left (the write connection, with fsyncs).
func (c *checkpointer) close() error {
	return errors.Join(c.db.Close(), c.file.close())
}
