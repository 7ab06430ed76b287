// Package faultproxy is a TCP proxy for tests that breaks the network on
// demand: it cuts every connection, blackholes traffic (stops forwarding
// without closing, the half-open link a dead NAT or a sleeping laptop
// leaves behind), delays it, or refuses new connections, and heals.
//
// It sits between a client and a real server:
//
//	p, err := faultproxy.Listen("127.0.0.1:0", serverAddr)
//	defer p.Close()
//	// point the client at p.Addr()
//	p.CutAll()
//
// It works over any net.Listener and dial func too (New), so a test can run
// it on in-memory pipes inside a testing/synctest bubble (see PipeListener).
// All methods are safe for concurrent use.
package faultproxy

import (
	"context"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"
)

// Direction selects which way of a link a fault applies to.
type Direction int

const (
	// Both directions.
	Both Direction = iota
	// Upstream is client to server.
	Upstream
	// Downstream is server to client.
	Downstream
)

// DialFunc opens a connection to the upstream server.
type DialFunc func(ctx context.Context) (net.Conn, error)

// Proxy forwards connections accepted on a listener to an upstream server,
// applying the faults set on it. The zero value is not usable: call New or
// Listen.
type Proxy struct {
	ln   net.Listener
	dial DialFunc

	mu       sync.Mutex
	links    map[*link]struct{}
	refuse   bool
	blackUp  bool
	blackDn  bool
	delay    time.Duration
	accepted int
	cuts     int
	closed   bool

	done chan struct{}
	// wg counts the accept loop and every link's two copy goroutines;
	// Close waits for all of them (the Proxy owns them).
	wg sync.WaitGroup
}

// Listen starts a proxy on a TCP address (use "127.0.0.1:0") that forwards
// to the TCP address upstream.
func Listen(addr, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	return New(ln, func(ctx context.Context) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", upstream)
	}), nil
}

// ListenURL starts a proxy on a free loopback port in front of the host
// of rawURL (a postgres:// or nats:// URL, say) and returns it with the
// URL that reaches that host through it (rawURL with the proxy's address
// as its host).
func ListenURL(rawURL string) (*Proxy, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, "", err
	}
	p, err := Listen("127.0.0.1:0", u.Host)
	if err != nil {
		return nil, "", err
	}
	u.Host = p.Addr()
	return p, u.String(), nil
}

// New starts a proxy accepting on ln and dialing upstream with dial. The
// proxy owns ln and closes it in Close.
func New(ln net.Listener, dial DialFunc) *Proxy {
	p := &Proxy{ln: ln, dial: dial, links: make(map[*link]struct{}), done: make(chan struct{})}
	p.wg.Add(1)
	go p.acceptLoop()
	return p
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// CutAll closes every open connection on both sides (a TCP reset as far as
// each side can tell) and returns how many it cut. New connections are
// still accepted.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.cuts += len(links)
	p.mu.Unlock()
	for _, l := range links {
		l.close()
	}
	return len(links)
}

// Cut closes the link whose client side is at clientAddr (the address the
// client dialed from: its conn's LocalAddr().String()) and reports whether
// there was one. Tests use it to give each connection its own lifetime.
func (p *Proxy) Cut(clientAddr string) bool {
	p.mu.Lock()
	var found *link
	for l := range p.links {
		if l.client.RemoteAddr().String() == clientAddr {
			found = l
			break
		}
	}
	if found != nil {
		p.cuts++
	}
	p.mu.Unlock()
	if found == nil {
		return false
	}
	found.close()
	return true
}

// Blackhole stops forwarding in the given direction without closing
// anything: bytes are read and dropped, so writers see success and readers
// see silence. Blackhole(Both) makes every link half-open.
func (p *Proxy) Blackhole(dir Direction) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if dir == Both || dir == Upstream {
		p.blackUp = true
	}
	if dir == Both || dir == Downstream {
		p.blackDn = true
	}
}

// Delay holds every chunk of data for d before forwarding it (0 turns it
// off). Order is kept.
func (p *Proxy) Delay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// Refuse makes the proxy close new connections as soon as it accepts them
// (on=true), as a server that is down would; existing links are untouched.
func (p *Proxy) Refuse(on bool) {
	p.mu.Lock()
	p.refuse = on
	p.mu.Unlock()
}

// Heal clears every fault: no blackhole, no delay, new connections
// accepted. Links cut earlier stay cut; data dropped by a blackhole stays
// dropped.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.refuse, p.blackUp, p.blackDn, p.delay = false, false, false, 0
	p.mu.Unlock()
}

// Stats reports how many connections the proxy accepted (and forwarded)
// and how many it cut.
func (p *Proxy) Stats() (accepted, cut int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted, p.cuts
}

// Close stops accepting, cuts every link and waits for the proxy's
// goroutines to end. It is idempotent.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.wg.Wait()
		return nil
	}
	p.closed = true
	close(p.done)
	p.mu.Unlock()
	err := p.ln.Close()
	p.CutAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) acceptLoop() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			select {
			case <-p.done:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		refuse, closed := p.refuse, p.closed
		p.mu.Unlock()
		if refuse || closed {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.connect(c)
	}
}

// connect dials upstream for one accepted connection and starts the two
// copy goroutines. It runs on its own goroutine so a slow upstream does not
// hold up accepting.
func (p *Proxy) connect(c net.Conn) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	go func() {
		select {
		case <-p.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	up, err := p.dial(ctx)
	cancel()
	if err != nil {
		c.Close()
		return
	}
	l := &link{client: c, server: up, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed || p.refuse {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.links[l] = struct{}{}
	p.accepted++
	p.wg.Add(2)
	p.mu.Unlock()
	go p.pipe(l, l.client, l.server, Upstream)
	go p.pipe(l, l.server, l.client, Downstream)
}

// link is one proxied connection.
type link struct {
	client, server net.Conn
	once           sync.Once
	done           chan struct{}
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.server.Close()
	})
}

func (p *Proxy) pipe(l *link, src, dst net.Conn, dir Direction) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			black := (dir == Upstream && p.blackUp) || (dir == Downstream && p.blackDn)
			delay := p.delay
			p.mu.Unlock()
			if delay > 0 {
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-l.done:
					t.Stop()
					return
				}
			}
			if !black {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			// EOF or a closed conn: either way this link is over, and
			// closing both sides tells the other copier.
			return
		}
	}
}
