package sqlite

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
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
	s := &walSyncer{f: f}
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
	p := &walSyncer{f: r}
	p.aio, _ = newAIOSync()
	if err := p.sync(); err == nil {
		t.Error("sync of a pipe: no error")
	}
	if p.aio != nil || p.plainSyncs.Load() != 1 {
		t.Errorf("pipe: aio kept (%v) or %d plain fsyncs, want it dropped and 1", p.aio != nil, p.plainSyncs.Load())
	}
	p.close()
}
