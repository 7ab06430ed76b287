package natsbroker

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// LinkErr says whether this node is cut off from NATS: nil while the
// connection is up, an error naming its state (reconnecting, closed)
// otherwise. While it is set the node still orders writes (PostgreSQL
// does) and delivers them to its own connections by polling the store,
// but it neither hears nor tells the other nodes live (typing, presence,
// events at broker speed), so the server's /readyz answers 503 and a
// load balancer sends new clients elsewhere. Safe for concurrent use.
func (b *Broker) LinkErr() error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("natsbroker: not connected to NATS (%s)", st)
	}
	return nil
}
