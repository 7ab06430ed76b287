//go:build !unix

package sqlite_test

import "time"

// cpuTime is not measured here: the cpu-us/msg metric reads 0.
func cpuTime() time.Duration { return 0 }
