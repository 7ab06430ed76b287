//go:build !linux

package bench

import "errors"

// PinSelf is Linux-only.
func PinSelf(cpus []int) error {
	return errors.New("pin: Linux only (use taskset or the OS's own tool)")
}

func startPinned(cpus []int, start func() error) error {
	if len(cpus) == 0 {
		return start()
	}
	return errors.New("pin: Linux only")
}
