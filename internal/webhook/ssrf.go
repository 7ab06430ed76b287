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

// nonPublic are the blocks publicAddr refuses beyond what netip's
// predicates name: shared, reserved and special-purpose space (IANA's
// special-purpose registries) that is never a public receiver, and
// routes into it (IPv4-compatible IPv6, the local-use NAT64 prefix).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network": 0.0.0.0 reaches the host itself
	netip.MustParsePrefix("100.64.0.0/10"),   // CGNAT, shared address space (RFC 6598)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking, used inside networks
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the broadcast address
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64 (RFC 8215): a private network's translator
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

// Translators that carry an IPv4 address inside an IPv6 one: a dial to
// 64:ff9b::a9fe:a9fe reaches 169.254.169.254 through a NAT64 gateway (an
// IPv6-only cloud's usual set-up), 2002:a9fe:a9fe:: through a 6to4 relay.
// publicAddr judges the IPv4 address they carry.
var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052's well-known prefix: the IPv4 address is the last 32 bits
	sixTo4 = netip.MustParsePrefix("2002::/16")    // RFC 3056: the IPv4 address is bits 16-47
)

// publicAddr reports whether ip is an address a webhook may reach without
// the operator's leave: not loopback, private, link-local, CGNAT,
// unspecified, multicast, reserved or special-purpose, nor an IPv6
// address that a translator turns into such an IPv4 address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(ip):
			return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
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
		return fmt.Errorf("webhook: %s is a private, loopback, reserved or otherwise non-public address, or translates to one (allow with --webhook-allow-private)", ip)
	}
	return nil
}
