package sqlite

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// pipeLog records, in order, what the batcher, the syncer and the
// callers saw.
type pipeLog struct {
	mu  sync.Mutex
	evs []string
}

func (l *pipeLog) add(format string, args ...any) {
	l.mu.Lock()
	l.evs = append(l.evs, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *pipeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}

// pipeModes runs a test with the WAL fsync asynchronous (Linux) and with
// the fallback, fsync(2).
func pipeModes(t *testing.T, test func(t *testing.T, db *DB)) {
	for _, mode := range []string{"aio", "fsync"} {
		t.Run(mode, func(t *testing.T) {
			db := openTest(t)
			if mode == "fsync" && db.b.wal.aio != nil {
				db.b.wal.aio.close()
				db.b.wal.aio = nil
			}
			if err := db.b.do(t.Context(), func(w *writeTx) error {
				_, err := w.exec("CREATE TABLE pipe_test (v INTEGER)")
				return err
			}); err != nil {
				t.Fatal(err)
			}
			test(t, db)
		})
	}
}

// asyncInsert queues an op inserting v, answered through the log (on the
// syncer, in answer order) and on the returned channel. The op records
// its SQL's run and its batch's number (the batches committed before it,
// plus one).
func asyncInsert(db *DB, log *pipeLog, name string, v int, ran chan<- struct{}) <-chan error {
	done := make(chan error, 1)
	o := &op{fn: func(w *writeTx) error {
		log.add("%s sql batch=%d", name, w.b.batches.Load()+1)
		if ran != nil {
			close(ran)
		}
		_, err := w.exec("INSERT INTO pipe_test (v) VALUES (?)", v)
		return err
	}}
	db.b.queue.EnqueueManyAsync([]*op{o}, func(_ int, err error) {
		log.add("%s answered err=%v", name, err != nil)
		done <- err
	})
	return done
}

// heldSyncer is the WAL syncer with its next fsync held: begun, but its
// end reported only once ran is closed (or, so that a batcher that cannot
// overlap does not hang the test, a while has passed), and then as fail
// when fail is set. Every fsync logs the batches committed when it began
// (it covers them) and the checkpoints run so far, and its end. Only the
// batcher goroutine calls its methods.
type heldSyncer struct {
	real     walSyncer
	db       *DB
	log      *pipeLog
	ran      <-chan struct{}
	fail     error
	hold     time.Duration
	started  chan struct{}
	armed    atomic.Bool   // the next fsync is held
	once     bool          // the held fsync has begun
	released chan struct{} // closed when the held fsync may end
	holding  bool
	covered  int64
}

func (h *heldSyncer) begin() {
	h.covered = h.db.b.batches.Load()
	h.log.add("sync start covered=%d checkpoints=%d", h.covered, h.db.ckpt.runs.Load())
	if h.once || !h.armed.Load() {
		return
	}
	h.once, h.holding = true, true
	close(h.started)
	var ring chan struct{}
	if h.db.b.wal.aio != nil {
		h.real.ring()
		ring = h.db.b.wal.aio.ring
	}
	go func() {
		select {
		case <-h.ran:
		case <-time.After(h.hold):
			h.log.add("sync gave up waiting for the next batch's SQL")
		}
		close(h.released)
		select {
		case ring <- struct{}{}: // the batcher polls again
		default:
		}
	}()
}

func (h *heldSyncer) end(err error) error {
	if h.holding {
		h.holding = false
		if h.fail != nil {
			err = h.fail
		}
	}
	h.log.add("sync end covered=%d err=%v checkpoints=%d", h.covered, err != nil, h.db.ckpt.runs.Load())
	return err
}

func (h *heldSyncer) start() bool {
	if !h.real.start() {
		return false // sync follows
	}
	h.begin()
	return true
}

func (h *heldSyncer) poll() (bool, error) {
	if h.holding {
		select {
		case <-h.released:
		default:
			return false, nil
		}
	}
	done, err := h.real.poll()
	if !done {
		return false, nil
	}
	return true, h.end(err)
}

func (h *heldSyncer) wait() error {
	if h.holding {
		<-h.released
	}
	return h.end(h.real.wait())
}

func (h *heldSyncer) sync() error {
	h.begin()
	if h.holding {
		<-h.released
	}
	return h.end(h.real.sync())
}

func (h *heldSyncer) ring() <-chan struct{} { return h.real.ring() }

// holdSync installs a heldSyncer (see it) for the next fsync; inSync is
// closed when that fsync begins.
func holdSync(t *testing.T, db *DB, log *pipeLog, ran <-chan struct{}, fail error) (inSync <-chan struct{}) {
	hold := 5 * time.Second
	if db.b.wal.aio == nil {
		// fsync(2) has no pipeline: the next batch cannot run during
		// it, and waiting for it is only slow.
		hold = 100 * time.Millisecond
	}
	return holdSyncFor(t, db, log, ran, fail, hold)
}

// after returns the index of the first event of evs after from (-1: none)
// that begins with prefix.
func after(evs []string, from int, prefix string) int {
	for i := from + 1; i < len(evs) && from >= 0; i++ {
		if strings.HasPrefix(evs[i], prefix) {
			return i
		}
	}
	return -1
}

func holdSyncFor(t *testing.T, db *DB, log *pipeLog, ran <-chan struct{}, fail error, hold time.Duration) (inSync <-chan struct{}) {
	h := &heldSyncer{db: db, log: log, ran: ran, fail: fail, hold: hold, started: make(chan struct{}), released: make(chan struct{})}
	// Installed on the batcher goroutine, with every batch before
	// answered; this op's own batch is synced unheld: the hold begins
	// with the next fsync.
	if err := db.b.do(t.Context(), func(w *writeTx) error {
		w.b.settle(true)
		h.real = w.b.walp
		w.b.walp = h
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.armed.Store(true)
	return h.started
}

// insertAB holds the next WAL fsync (holdSyncFor, failing with fail if
// set; hold 0: holdSync's), queues insert A, and once A's fsync has begun
// insert B, whose SQL running releases the fsync (ran).
func insertAB(t *testing.T, db *DB, fail error, hold time.Duration) (log *pipeLog, ran chan struct{}, a, b <-chan error) {
	log, ran = &pipeLog{}, make(chan struct{})
	var inSync <-chan struct{}
	if hold == 0 {
		inSync = holdSync(t, db, log, ran, fail)
	} else {
		inSync = holdSyncFor(t, db, log, ran, fail, hold)
	}
	a = asyncInsert(db, log, "A", 1, nil)
	<-inSync
	b = asyncInsert(db, log, "B", 2, ran)
	return log, ran, a, b
}

// TestPipelineOverlap: while batch A's WAL fsync is in flight, the next
// batch (B) runs its SQL and commits; A is answered before B, and each
// only after an fsync that began once it had committed ended.
func TestPipelineOverlap(t *testing.T) {
	pipeModes(t, func(t *testing.T, db *DB) {
		log, _, a, b := insertAB(t, db, nil, 0)
		if err := errors.Join(<-a, <-b); err != nil {
			t.Fatal(err)
		}
		evs := log.all()
		idx := func(prefix string) int {
			return slices.IndexFunc(evs, func(e string) bool { return strings.HasPrefix(e, prefix) })
		}
		aSyncEnd := after(evs, idx("A sql"), "sync end")
		if i := idx("B sql"); db.b.wal.aio != nil && (i < 0 || aSyncEnd < 0 || i > aSyncEnd) {
			t.Errorf("B's SQL did not run while A's fsync was in flight: %q", evs)
		}
		if i, j := idx("A answered"), idx("B answered"); i < 0 || j < 0 || i > j {
			t.Errorf("B answered before A: %q", evs)
		}
		// Each answer follows the end of an fsync that covered it.
		for _, name := range []string{"A", "B"} {
			var batch int64
			ans := idx(name + " answered")
			if i := idx(name + " sql"); i >= 0 {
				fmt.Sscanf(evs[i], name+" sql batch=%d", &batch)
			}
			ok := false
			for _, e := range evs[:max(ans, 0)] {
				var c int64
				var failed bool
				if n, _ := fmt.Sscanf(e, "sync end covered=%d err=%t", &c, &failed); n == 2 && c >= batch && !failed {
					ok = true
				}
			}
			if !ok {
				t.Errorf("%s (batch %d) answered before an fsync covering it ended: %q", name, batch, evs)
			}
		}
		var n int
		if err := db.read.QueryRowContext(t.Context(), "SELECT count(*) FROM pipe_test").Scan(&n); err != nil || n != 2 {
			t.Errorf("%d rows (%v), want 2", n, err)
		}
	})
}

// TestPipelineFsyncFailure: when A's WAL fsync fails, B, committed on top
// of it while that fsync ran, fails too even though its own fsync would
// succeed (Linux reports a writeback error once), and so does every write
// after it: the store stops writing, unavailable.
func TestPipelineFsyncFailure(t *testing.T) {
	pipeModes(t, func(t *testing.T, db *DB) {
		log, _, a, b := insertAB(t, db, errors.New("injected EIO"), 0)
		errA, errB := <-a, <-b
		if errA == nil {
			t.Errorf("A answered nil after its fsync failed: %q", log.all())
		}
		if errB == nil {
			t.Errorf("B, committed on top of A, answered nil after A's fsync failed: %q", log.all())
		}
		errC := db.b.do(t.Context(), func(w *writeTx) error {
			_, err := w.exec("INSERT INTO pipe_test (v) VALUES (3)")
			return err
		})
		if errC == nil {
			t.Errorf("a write after the failed fsync answered nil: %q", log.all())
		}
		for name, err := range map[string]error{"A": errA, "B": errB, "C": errC} {
			if err != nil && parley.ErrorCode(err) != parley.EUNAVAILABLE {
				t.Errorf("%s: %v (code %s), want unavailable", name, err, parley.ErrorCode(err))
			}
		}
		if db.WriteErr() == nil {
			t.Error("WriteErr is nil after the WAL fsync failed")
		}
	})
}

// TestPipelineCloseDrains: Close answers every batch committed, after
// its fsync.
func TestPipelineCloseDrains(t *testing.T) {
	pipeModes(t, func(t *testing.T, db *DB) {
		log, ran, a, b := insertAB(t, db, nil, 0)
		<-ran
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		for name, ch := range map[string]<-chan error{"A": a, "B": b} {
			select {
			case err := <-ch:
				if err != nil {
					t.Errorf("%s: %v", name, err)
				}
			default:
				t.Errorf("%s not answered when Close returned: %q", name, log.all())
			}
		}
	})
}

// TestPipelineCheckpointWaits: a checkpoint due after batch A waits until
// A's fsync has ended and A is answered: no checkpoint runs (and fsyncs
// the WAL itself) while a WAL fsync is in flight. The fsync is held until
// B's SQL runs or a second passes; B is queued during it.
func TestPipelineCheckpointWaits(t *testing.T) {
	defer func(d time.Duration) { checkpointInterval = d }(checkpointInterval)
	pipeModes(t, func(t *testing.T, db *DB) {
		// Set on the batcher goroutine, between batches.
		if err := db.b.do(t.Context(), func(*writeTx) error {
			checkpointInterval = 0 // after every batch
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		log, _, a, b := insertAB(t, db, nil, time.Second)
		if err := errors.Join(<-a, <-b); err != nil {
			t.Fatal(err)
		}
		evs := log.all()
		var c0, c1 int64
		var covered int64
		var failed bool
		if len(evs) < 3 {
			t.Fatalf("log %q", evs)
		}
		aSQL := slices.IndexFunc(evs, func(e string) bool { return strings.HasPrefix(e, "A sql") })
		i, j := after(evs, aSQL, "sync start"), after(evs, aSQL, "sync end")
		if i < 0 || j < 0 {
			t.Fatalf("no fsync after A's SQL: %q", evs)
		}
		fmt.Sscanf(evs[i], "sync start covered=%d checkpoints=%d", &covered, &c0)
		fmt.Sscanf(evs[j], "sync end covered=%d err=%t checkpoints=%d", &covered, &failed, &c1)
		if c1 != c0 {
			t.Errorf("%d checkpoints ran during A's WAL fsync: %q", c1-c0, evs)
		}
		if db.ckpt.runs.Load() == 0 {
			t.Errorf("no checkpoint ran: %q", evs)
		}
	})
}
