//go:build race

package postgres

// raceEnabled: the race detector is on; it drops a share of sync.Pool's
// puts at random (pgx pools its buffers), so an allocation count is not
// fixed.
const raceEnabled = true
