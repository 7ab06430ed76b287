package sqlite

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// TestWALSyncFallback: where the kernel takes no asynchronous fsync of
// the file (a pipe has no fsync), the syncer falls back to fsync(2) for
// good and reports its error; on a regular file the asynchronous one
// succeeds (on Linux) and reports nothing.
func TestWALSyncFallback(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "x-wal"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("frames"); err != nil {
		t.Fatal(err)
	}
	s := &fileSyncer{f: f}
	s.aio, _ = newAIOSync()
	if err := s.sync(); err != nil {
		t.Fatalf("sync of a regular file: %v", err)
	}
	if runtime.GOOS == "linux" && (s.aioSyncs.Load() != 1 || s.plainSyncs.Load() != 0) {
		t.Errorf("regular file: %d asynchronous and %d plain fsyncs, want 1 and 0", s.aioSyncs.Load(), s.plainSyncs.Load())
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	p := &fileSyncer{f: r}
	p.aio, _ = newAIOSync()
	if err := p.sync(); err == nil {
		t.Error("sync of a pipe: no error")
	}
	if p.aio != nil || p.plainSyncs.Load() != 1 {
		t.Errorf("pipe: aio kept (%v) or %d plain fsyncs, want it dropped and 1", p.aio != nil, p.plainSyncs.Load())
	}
	p.close()
}

// TestCheckpointFsyncs: the batcher checkpoints between batches on a
// connection that makes no fsync (synchronous=OFF) and fsyncs the WAL
// before and the database file after each checkpoint itself; while the
// database file's fsync fails, no write transaction begins (it could start
// the WAL over on pages not yet durable in the file), and writes resume
// once it succeeds.
func TestCheckpointFsyncs(t *testing.T) {
	defer func(d time.Duration) { checkpointInterval = d }(checkpointInterval)
	checkpointInterval = 0 // after every batch
	path := filepath.Join(t.TempDir(), "ck.db")
	db, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	var sync int
	if err := db.ckpt.db.QueryRowContext(ctx, "PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if sync != 0 {
		t.Errorf("checkpoint connection synchronous = %d, want 0 (OFF)", sync)
	}
	write := func(i int) error {
		return db.b.do(ctx, func(w *writeTx) error {
			_, err := w.exec("INSERT INTO meta_test (v) VALUES (?)", i)
			return err
		})
	}
	if err := db.b.do(ctx, func(w *writeTx) error {
		_, err := w.exec("CREATE TABLE meta_test (v INTEGER)")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := write(5); err != nil {
		t.Fatal(err)
	}
	// The batcher checkpoints after answering, on its own goroutine: the
	// counts are read there, after the checkpoint that followed write 5
	// (read here, they caught it between its count and its fsync: 7
	// checkpoints, 6 fsyncs).
	var runs, files int64
	if err := db.b.do(ctx, func(*writeTx) error {
		runs = db.ckpt.runs.Load()
		files = db.ckpt.file.aioSyncs.Load() + db.ckpt.file.plainSyncs.Load()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if runs < 5 || files != runs {
		t.Errorf("%d checkpoints, %d fsyncs of the database file: want at least 5, one each", runs, files)
	}

	// The database file's fsync fails: writes fail, and nothing begins.
	good := db.ckpt.file
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// Set on the batcher goroutine, after the last checkpoint.
	if err := db.b.do(ctx, func(*writeTx) error {
		checkpointInterval = time.Hour
		db.ckpt.file = &fileSyncer{f: r}
		db.ckpt.failed = errors.New("fsync failed")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := write(6); err == nil {
		t.Error("a write began while the database file's fsync after a checkpoint failed")
	}
	// The batcher waits for the next op: it reads these after it.
	db.ckpt.file.close()
	db.ckpt.file = good
	if err := write(7); err != nil {
		t.Errorf("write after the fsync succeeded again: %v", err)
	}
	var n int
	if err := db.read.QueryRowContext(ctx, "SELECT count(*) FROM meta_test").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("%d rows, want 7 (0-5 and 7)", n)
	}
}
