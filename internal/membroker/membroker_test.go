package membroker_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/brokertest"
	"github.com/parleychat/parley/internal/membroker"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestConformance runs the broker suite. In one process every node shares
// the same broker, so both nodes of the pair are one instance.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) (parley.Broker, parley.Broker) {
		b := membroker.New()
		t.Cleanup(func() { b.Close() })
		return b, b
	})
}
