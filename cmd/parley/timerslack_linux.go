package main

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Timer slack on one P.
//
// Go's sysmon thread naps 20 µs at a time while a P runs, backing off
// only after a millisecond of finding nothing to do; while every P is
// idle it sleeps on a futex, and the first system call after that wakes
// it and starts it over at 20 µs (runtime/proc.go, sysmon). A server on
// one P that goes idle between bursts (a few thousand messages a second)
// therefore has sysmon napping at 20 µs through all its busy time: a
// thread switch on the same core every 70 µs (20 µs plus the kernel's
// default 50 µs timer slack), about a fifth of the server's CPU at 18k
// deliveries/s (docs/benchmarks.md, "Timer slack"). The runtime has no
// setting for sysmon's period, but the kernel's timer slack bounds how
// late a thread's timed sleep may end, and a larger one lets each nap
// last up to that long. A thread's slack is inherited by the threads it
// creates and kept across execve(2) (prctl(2)), and sysmon is created
// before any of our code runs: so serve sets its own thread's slack and
// executes itself again, and every thread of the new image, sysmon
// first, has it. This is what systemd's TimerSlackNSec= does for a unit.
//
// Only with one P: with more, sysmon rarely sleeps in the futex (some P
// is busy), and a large slack would also stretch the runtime's short
// sleeps between work-stealing attempts. What else the slack delays:
// every timer may fire up to the slack late (heartbeats, hello timeouts,
// retries: all of them tens of milliseconds or more).

// slackEnv marks a process that set its slack and executed itself, so
// that a kernel that keeps another value never loops.
const slackEnv = "PARLEY_TIMER_SLACK_APPLIED"

// applyTimerSlack gives every thread of the process a timer slack of d
// when the process has one P, by setting it and executing the binary
// again with the same arguments and environment. It returns only when
// it did not execute: nil when nothing was to be done, an error when
// setting or executing failed (the process then runs as it was). Call
// it before the process opens anything it would lose.
func applyTimerSlack(d time.Duration) error {
	applied := os.Getenv(slackEnv) != ""
	os.Unsetenv(slackEnv)
	if d <= 0 || runtime.GOMAXPROCS(0) != 1 {
		return nil
	}
	// prctl sets the calling thread's slack: the exec must run on it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	want := uintptr(d.Nanoseconds())
	cur, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if (err == nil && uintptr(cur) == want) || applied {
		return nil
	}
	old := uintptr(cur)
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, want, 0, 0, 0); err != nil {
		return fmt.Errorf("timer slack: %w", err)
	}
	os.Setenv(slackEnv, "1")
	// /proc/self/exe is this image even when its file was replaced.
	err = syscall.Exec("/proc/self/exe", os.Args, os.Environ())
	os.Unsetenv(slackEnv)
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, old, 0, 0, 0)
	return fmt.Errorf("timer slack: executing /proc/self/exe: %w", err)
}
