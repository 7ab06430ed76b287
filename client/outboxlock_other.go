//go:build !unix

package client

import "os"

// lockOutbox does nothing where flock(2) does not exist (Windows, wasm):
// there, nothing stops two clients from sharing an outbox file, and the
// app must see to it that one at a time uses it (docs/sdk.md).
func lockOutbox(string) (*os.File, error) { return nil, nil }
