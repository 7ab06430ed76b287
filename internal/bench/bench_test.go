package bench

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The multi-process test re-executes this test binary as a worker.
	if os.Getenv("PARLEY_BENCH_WORKER") == "1" {
		if err := Worker(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

var testSecret = []byte("bench-test-secret-0123456789abcdef0123456789")

func startServer(t *testing.T) *InProcServer {
	t.Helper()
	s := &InProcServer{DataDir: t.TempDir(), Secret: testSecret}
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// smoke runs a small scenario and checks that it completed and lost,
// duplicated and failed nothing. No figure is asserted: benchmarks are not
// tests.
// runLogged runs cfg for at most two minutes, failing the test with the
// run's log if it fails, and logs the result's table.
func runLogged(t *testing.T, cfg Config) *Result {
	t.Helper()
	var log bytes.Buffer
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v\nlog:\n%s", err, log.String())
	}
	var out bytes.Buffer
	if err := res.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", out.String())
	return res
}

func smoke(t *testing.T, cfg Config) *Result {
	t.Helper()
	if cfg.Server == nil {
		cfg.Server = startServer(t)
	}
	cfg.Secret = testSecret
	res := runLogged(t, cfg)
	if !res.OK() {
		t.Errorf("lost %d, duplicated %d, unexpected %d, unacked %d, failed %d; errors %v",
			res.Lost, res.Duplicated, res.Unexpected, res.Unacked, res.Failed, res.Errors)
	}
	if res.Clients == 0 {
		t.Errorf("no clients connected")
	}
	return res
}

func TestFanoutSmoke(t *testing.T) {
	res := smoke(t, Config{Scenario: "fanout", Rooms: 4, Members: 3, Rates: []float64{50, 100}, Step: 300 * time.Millisecond})
	if len(res.Steps) != 2 {
		t.Fatalf("steps = %d, want 2", len(res.Steps))
	}
	for i, s := range res.Steps {
		if s.Acked == 0 || s.Latency.Count == 0 {
			t.Errorf("step %d: acked %d, latency samples %d; want some of each", i, s.Acked, s.Latency.Count)
		}
	}
	if want := res.TotalAcked * 3; res.Steps[0].Latency.Count+res.Steps[1].Latency.Count != uint64(want) {
		t.Errorf("deliveries = %d, want %d (every acknowledged message to every member)",
			res.Steps[0].Latency.Count+res.Steps[1].Latency.Count, want)
	}
}

func TestLatencySmoke(t *testing.T) {
	smoke(t, Config{Scenario: "latency", Rooms: 3, Members: 4, Rate: 100, Duration: 300 * time.Millisecond})
}

func TestIdleSmoke(t *testing.T) {
	res := smoke(t, Config{Scenario: "idle", Conns: 20, Settle: 100 * time.Millisecond})
	if res.Clients != 20 {
		t.Errorf("clients = %d, want 20", res.Clients)
	}
}

func TestWriteSmoke(t *testing.T) {
	res := smoke(t, Config{Scenario: "write", Rooms: 3, Window: 4, Duration: 300 * time.Millisecond})
	if res.TotalAcked == 0 {
		t.Errorf("no write acknowledged")
	}
}

func TestResumeSmoke(t *testing.T) {
	res := smoke(t, Config{Scenario: "resume", Missed: 50, Repeat: 2})
	if res.Resume == nil || res.Resume.Count != 2 {
		t.Fatalf("resume = %+v, want 2 runs", res.Resume)
	}
}

func TestStormSmokeDrop(t *testing.T) {
	res := smoke(t, Config{Scenario: "storm", Conns: 30, Members: 3, Rate: 100, Duration: time.Second, Restart: "drop"})
	if s := res.Storm; s == nil || s.Resumed != s.Of || s.Of != 30 {
		t.Fatalf("storm = %+v, want all 30 resumed", res.Storm)
	}
}

func TestStormSmokeRestart(t *testing.T) {
	res := smoke(t, Config{Scenario: "storm", Conns: 30, Members: 3, Rate: 100, Duration: time.Second, Restart: "kill"})
	if s := res.Storm; s == nil || s.Resumed != s.Of || s.Of != 30 {
		t.Fatalf("storm = %+v, want all 30 resumed", res.Storm)
	}
}

func TestFanoutSmokeProcs(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	smoke(t, Config{Scenario: "fanout", Procs: 2, Rooms: 4, Members: 3, Rates: []float64{100}, Step: 300 * time.Millisecond,
		WorkerCommand: []string{exe, "-test.run=^$"}})
}

// floorSmoke runs the floor scenario small: no Parley server, the writer
// a child process (this test binary, as a worker). Figures are not
// asserted; that every frame written was read is.
func floorSmoke(t *testing.T, mode string, procs int) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	res := runLogged(t, Config{Scenario: "floor", Mode: mode, Procs: procs, Conns: 30, Rates: []float64{300, 600},
		Step: 300 * time.Millisecond, FrameBytes: 100, WorkerCommand: []string{exe, "-test.run=^$"}})
	if !res.OK() || res.Clients != 30 {
		t.Errorf("clients %d, never read %d, unexpected %d, failed %d; errors %v", res.Clients, res.Lost, res.Unexpected, res.Failed, res.Errors)
	}
	if len(res.Steps) != 2 {
		t.Fatalf("steps = %d, want 2", len(res.Steps))
	}
	var read int64
	for i, s := range res.Steps {
		if s.Sent == 0 || s.Deliveries != s.Sent || s.Latency.Count != uint64(s.Deliveries) {
			t.Errorf("step %d: written %d, read %d, latency samples %d; want all written read and timed", i, s.Sent, s.Deliveries, s.Latency.Count)
		}
		read += s.Deliveries
	}
	if read != res.TotalSent {
		t.Errorf("read %d in the steps, %d written in all", read, res.TotalSent)
	}
}

func TestFloorSmokeTCP(t *testing.T) { floorSmoke(t, FloorTCP, 1) }

func TestFloorSmokeWSProcs(t *testing.T) { floorSmoke(t, FloorWS, 2) }

func TestFloorFrame(t *testing.T) {
	for _, n := range []int{floorMinFrame, 200} {
		b := floorFrame(nil, n, 1763812345123456789)
		if len(b) != n {
			t.Errorf("frame of %d: %d bytes: %q", n, len(b), b)
		}
		if v, ok := floorSent(b); !ok || v != 1763812345123456789 {
			t.Errorf("frame of %d: sent %d, %v", n, v, ok)
		}
	}
}

// TestPart: workers' parts of n add up to n and differ by at most one,
// the larger ones first (rooms, idle connections and floor connections
// are split so).
func TestPart(t *testing.T) {
	for _, procs := range []int{1, 2, 3, 7} {
		for _, n := range []int{0, 1, 2, 5, 30, 1001} {
			sum, prev := 0, n+1
			for i := range procs {
				p := part(n, procs, i)
				if p > prev || p < n/procs || p > n/procs+1 {
					t.Errorf("part(%d, %d, %d) = %d (previous %d)", n, procs, i, p, prev)
				}
				sum, prev = sum+p, p
			}
			if sum != n {
				t.Errorf("parts of %d between %d add up to %d", n, procs, sum)
			}
		}
	}
}
