//go:build race

package server

// raceEnabled: the race detector is on; it drops a share of sync.Pool's
// puts at random, so a pooled path's allocation count is not fixed.
const raceEnabled = true
