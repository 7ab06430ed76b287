//go:build !linux

package main

import "time"

// applyTimerSlack does nothing off Linux (see timerslack_linux.go).
func applyTimerSlack(time.Duration) error { return nil }
