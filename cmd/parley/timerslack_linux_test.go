package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// threadSlacks returns the timer slack of each thread of process pid, in
// nanoseconds (a thread's /proc/<tid>/timerslack_ns).
func threadSlacks(t *testing.T, pid int) map[string]int64 {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, e := range tasks {
		b, err := os.ReadFile("/proc/" + e.Name() + "/timerslack_ns")
		if err != nil {
			continue // the thread ended
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = v
	}
	if len(out) == 0 {
		t.Fatalf("no thread of %d read", pid)
	}
	return out
}

// TestTimerSlackOnOneP: serve with one P runs every thread (sysmon's
// among them) with --timer-slack, by executing itself again in the same
// process; with 0, or with two Ps, the threads keep the slack they were
// started with.
func TestTimerSlackOnOneP(t *testing.T) {
	own := threadSlacks(t, os.Getpid())
	var inherited int64
	for _, v := range own {
		inherited = v
	}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want int64
	}{
		{"one P, default 1ms", []string{"GOMAXPROCS=1"}, nil, 1_000_000},
		{"one P, 300us", []string{"GOMAXPROCS=1"}, []string{"--timer-slack", "300us"}, 300_000},
		{"one P, off", []string{"GOMAXPROCS=1"}, []string{"--timer-slack", "0"}, inherited},
		{"two Ps", []string{"GOMAXPROCS=2"}, nil, inherited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--data-dir", t.TempDir()}, tc.args...)
			p := startParleyEnv(t, tc.env, args...)
			for tid, v := range threadSlacks(t, p.cmd.Process.Pid) {
				if v != tc.want {
					t.Errorf("thread %s: timer slack %d ns, want %d", tid, v, tc.want)
				}
			}
		})
	}
}

// TestTimerSlackBenchWorker: the load tool's worker process (`parley
// bench --worker`, as a parent bench starts it) on one P runs every
// thread with --timer-slack, by executing itself again, as serve does.
// The worker waits for its job on stdin meanwhile; the test reads its
// threads once the new image runs (its environment holds the marker).
func TestTimerSlackBenchWorker(t *testing.T) {
	cmd := exec.Command(os.Args[0], "bench", "--worker", "--timer-slack", "700us")
	cmd.Env = append(os.Environ(), runAsParley+"=1", "GOMAXPROCS=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		stdin.Close() // no job: the worker exits
		<-exited
	}()
	pid := cmd.Process.Pid
	// Not a timed assertion: the deadline only bounds a run in which the
	// worker never executes itself (the check below then reports it).
	deadline := time.Now().Add(20 * time.Second)
	for {
		// While the worker executes itself, its /proc entry may answer
		// "no such process" for a moment (execve(2) from a thread other
		// than the leader takes over the leader's pid): an error counts
		// only once the worker has exited.
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err == nil && bytes.Contains(env, []byte(slackEnv+"=1")) {
			break
		}
		select {
		case werr := <-exited:
			exited <- werr // for the deferred wait
			t.Fatalf("the worker exited (%v) before its threads were read; stderr: %s", werr, stderr.Bytes())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker did not execute itself to set its timer slack (last read: %v; threads: %v)", err, threadSlacks(t, pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for tid, v := range threadSlacks(t, pid) {
		if v != 700_000 {
			t.Errorf("thread %s: timer slack %d ns, want 700000", tid, v)
		}
	}
}

// TestBenchTimerSlackDefault: by default the load tool takes a slack only
// for write, whose sends wait for acknowledgements, not for a timer.
func TestBenchTimerSlackDefault(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		flag     time.Duration
		want     time.Duration
	}{
		{"write", -1, time.Millisecond},
		{"fanout", -1, 0},
		{"latency", -1, 0},
		{"", -1, 0}, // a worker keeps its parent's
		{"fanout", 300 * time.Microsecond, 300 * time.Microsecond},
		{"write", 0, 0},
	} {
		c := benchCmd{Scenario: tc.scenario, TimerSlack: tc.flag}
		if got := c.timerSlack(); got != tc.want {
			t.Errorf("scenario %q, --timer-slack %v: slack %v, want %v", tc.scenario, tc.flag, got, tc.want)
		}
	}
}
