//go:build !unix

package server

// fdLimit is unknown here: the default HTTPLimits.MaxConns is no cap.
func fdLimit() int { return 0 }
