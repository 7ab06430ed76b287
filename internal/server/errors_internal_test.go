package server

import (
	"testing"

	"github.com/parleychat/parley/protocol"
)

// TestReservedCloseCodes: no error closes a connection with 4102 (access
// revoked), which docs/protocol.md marks reserved: nothing revokes access.
func TestReservedCloseCodes(t *testing.T) {
	for code, ci := range codes {
		if ci.close == protocol.CloseAuthRevoked {
			t.Errorf("error %s closes with %d, documented as reserved", code, ci.close)
		}
	}
}
