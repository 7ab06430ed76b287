package server

import (
	"testing"

	"github.com/parleychat/parley/protocol"
)

// TestReservedCloseCodes: no error closes a connection with 4102 (access
// revoked): only a ban through the server API sends it, to the banned
// user's live connections (a banned user's hello gets 4100 like any
// refused token).
func TestReservedCloseCodes(t *testing.T) {
	for code, ci := range codes {
		if ci.close == protocol.CloseAuthRevoked {
			t.Errorf("error %s closes with %d, documented as reserved", code, ci.close)
		}
	}
}
