package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
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
