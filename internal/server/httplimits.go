package server

import (
	"cmp"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
)

// HTTPLimits bounds plain HTTP connections, so that idle or slow clients
// cannot hold sockets, goroutines and file descriptors. Zero fields take
// the defaults below; a negative cap means no cap. They apply to every
// listener of a Server: those it serves (Serve, ServeTLS) and those
// beside them (AsideServer on LimitListener), whose connections are
// counted together against the caps.
//
// The timeouts are net/http's and apply to plain HTTP only: serveWS clears
// them on a connection it upgrades, whose lifetime the heartbeat governs.
type HTTPLimits struct {
	// ReadHeaderTimeout: the time to send a request's headers (default
	// 10 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout: the time to send a whole request, body included,
	// counted from its first byte (default 60 s). An upload must arrive
	// within it: 10 MiB in 60 s is 175 KB/s. A body sent slower is cut
	// off and the connection closed.
	ReadTimeout time.Duration
	// WriteTimeout: the time from the end of a request's headers to the
	// end of its response, so it covers reading the body too and must
	// not be shorter than ReadTimeout (default 90 s).
	WriteTimeout time.Duration
	// IdleTimeout: how long a keep-alive connection may wait for its next
	// request (default 60 s).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's header block (default 64 KiB;
	// over it the client gets 431).
	MaxHeaderBytes int
	// ConnsPerIP caps the open TCP connections (plain HTTP and WebSocket
	// alike) from one IPv4 address or one IPv6 /64 (default 64). A
	// connection over the cap is closed as soon as it is accepted, before
	// any byte is read, and counted in
	// parley_http_connections_refused_total{reason="per_ip"}.
	ConnsPerIP int
	// MaxConns caps the open connections in all (default: the process's
	// file descriptor limit, RLIMIT_NOFILE, less 128 kept for the store,
	// logs and outgoing connections; no cap where that limit is unknown).
	// Over it, new connections are closed at once and counted with
	// reason="total": the process never runs out of descriptors, so the
	// store and connections already open keep working.
	MaxConns int
}

// Defaults of HTTPLimits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 90 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultConnsPerIP        = 64
	// fdReserve is what the default MaxConns leaves of the fd limit.
	fdReserve = 128
)

func (l HTTPLimits) withDefaults() HTTPLimits {
	orDefault(&l.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	orDefault(&l.ReadTimeout, DefaultReadTimeout)
	orDefault(&l.WriteTimeout, DefaultWriteTimeout)
	orDefault(&l.IdleTimeout, DefaultIdleTimeout)
	orDefault(&l.MaxHeaderBytes, DefaultMaxHeaderBytes)
	l.ConnsPerIP = cmp.Or(l.ConnsPerIP, DefaultConnsPerIP)
	if l.MaxConns == 0 {
		l.MaxConns = -1
		if n := fdLimit(); n > 0 {
			// A tiny limit keeps half for connections rather than none.
			l.MaxConns = max(n-fdReserve, n/2)
		}
	}
	return l
}

// connCaps counts the connections a server's listeners have accepted and
// not yet seen closed, per remote address (ipKey) and in all: one count
// for every listener of a Server, the public ones and those beside them
// (LimitListener), since they share the process's file descriptors.
// Safe for concurrent use.
type connCaps struct {
	perIP, total int // <= 0: no cap
	m            *metrics

	mu   sync.Mutex
	byIP map[netip.Addr]int
	open int
}

func newConnCaps(perIP, total int, m *metrics) *connCaps {
	return &connCaps{perIP: perIP, total: total, m: m, byIP: map[netip.Addr]int{}}
}

// limitListener admits connections within its caps. Over a cap it closes
// the new connection and accepts the next: Accept never blocks on the
// caps, so refusing one client does not delay another (unlike
// netutil.LimitListener, which stops accepting while full).
type limitListener struct {
	net.Listener
	*connCaps
}

func newLimitListener(ln net.Listener, caps *connCaps) *limitListener {
	return &limitListener{Listener: ln, connCaps: caps}
}

// Accept returns the next connection within the caps.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := ipKey(c.RemoteAddr())
		if reason := l.admit(key); reason != "" {
			c.Close()
			l.m.httpRefused.WithLabelValues(reason).Inc()
			continue
		}
		l.m.httpConns.Inc()
		return &limitedConn{Conn: c, l: l.connCaps, key: key}, nil
	}
}

// admit counts a new connection from key, or says which cap it is over.
func (l *connCaps) admit(key netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.open >= l.total {
		return "total"
	}
	if key.IsValid() {
		if l.perIP > 0 && l.byIP[key] >= l.perIP {
			return "per_ip"
		}
		l.byIP[key]++
	}
	l.open++
	return ""
}

func (l *connCaps) release(key netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if l.byIP[key]--; l.byIP[key] <= 0 {
			delete(l.byIP, key)
		}
	}
	l.m.httpConns.Dec()
}

// ipKey is what the per-IP cap counts: the IPv4 address, or the IPv6
// address's /64 (one subscriber's prefix, which it can fill with
// addresses); invalid for addresses that are not IP (Unix sockets).
func ipKey(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	if ta, ok := a.(*net.TCPAddr); ok {
		ap = ta.AddrPort()
	} else if p, err := netip.ParseAddrPort(a.String()); err == nil {
		ap = p
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		ip = netip.PrefixFrom(ip, 64).Masked().Addr()
	}
	return ip
}

// limitedConn gives its slot back when closed (once, however often Close
// is called: net/http and a hijacker may both close it).
type limitedConn struct {
	net.Conn
	l    *connCaps
	key  netip.Addr
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// SyscallConn exposes the socket, for the WebSocket reader's readiness
// waits (wsbuf.go), as the *net.TCPConn it wraps would.
func (c *limitedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite lets net/http half-close before closing, as it does with a
// *net.TCPConn, so a client reads an error response before the reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
