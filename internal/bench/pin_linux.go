//go:build linux

package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

func cpuSet(cpus []int) (*unix.CPUSet, error) {
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= runtime.NumCPU()*8 {
			return nil, fmt.Errorf("pin: no CPU %d", c)
		}
		set.Set(c)
	}
	return &set, nil
}

// PinSelf restricts every thread of this process to cpus; threads and
// processes it starts later inherit the restriction. It walks the
// threads twice: one started during the first walk by a thread not yet
// restricted is caught by the second.
func PinSelf(cpus []int) error {
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	for range 2 {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("pin thread %d: %w", tid, err)
			}
		}
	}
	return nil
}

// startPinned calls start (which forks a process) on a thread restricted
// to cpus, so the process inherits that restriction from its first
// instruction (as `taskset -c` would give it), then gives the thread its
// affinity back. Empty cpus: start as it is.
func startPinned(cpus []int, start func() error) error {
	if len(cpus) == 0 {
		return start()
	}
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var old unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(0, set); err != nil {
		return err
	}
	defer unix.SchedSetaffinity(0, &old)
	return start()
}
