package webhook

import (
	"fmt"
	"net"
	"net/netip"
	"syscall"
)

// A webhook URL is the operator's, but the host it names resolves at
// delivery time: a name that resolves (or is rebound) to a private address
// would let whoever controls that DNS reach the node's private network.
// So the check runs on the address actually dialled (net.Dialer.Control),
// after resolution, not on the URL.

// cgnat is 100.64.0.0/10 (RFC 6598), shared address space.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether ip is an address a webhook may reach without
// the operator's leave: not loopback, private, link-local, CGNAT,
// unspecified or multicast.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() &&
		!ip.IsLinkLocalMulticast() && !ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() &&
		!ip.IsUnspecified() && !cgnat.Contains(ip)
}

// refusePrivate is a net.Dialer.Control that refuses non-public addresses.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("webhook: dialling %q: %w", address, err)
	}
	if !publicAddr(ip) {
		return fmt.Errorf("webhook: %s is a private, loopback or otherwise non-public address (allow with --webhook-allow-private)", ip)
	}
	return nil
}
