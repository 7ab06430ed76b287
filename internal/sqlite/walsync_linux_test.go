package sqlite

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// BenchmarkWALSync: one commit's fsync of a file just appended 4 KiB,
// asynchronous (the batcher's) against fsync(2). cpu-us/op is this
// process's CPU time per sync (user and system); the kernel worker that
// runs an asynchronous fsync is not in it, as the time fsync(2) spends in
// the kernel is. Run it on one CPU (taskset -c 1) for the pinned server's
// case.
func BenchmarkWALSync(b *testing.B) {
	for _, mode := range []string{"aio", "fsync"} {
		b.Run(mode, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "x-wal")
			w, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			s, err := openSyncer(path)
			if err != nil {
				b.Fatal(err)
			}
			defer s.close()
			if mode == "fsync" && s.aio != nil {
				s.aio.close()
				s.aio = nil
			}
			page := make([]byte, 4096)
			cpu0 := cpuTimeNow()
			for b.Loop() {
				if _, err := w.Write(page); err != nil {
					b.Fatal(err)
				}
				if err := s.sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTimeNow()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}

func cpuTimeNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
