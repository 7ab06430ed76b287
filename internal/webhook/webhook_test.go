package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseEndpoint(t *testing.T) {
	good := []struct {
		spec  string
		name  string
		kinds []string
	}{
		{"url=https://push.example.com/hook,events=message.new,secret=0123456789abcdef", "push.example.com", []string{"message.new"}},
		{"url=https://x.example/h,events=message.new,message.deleted,secret=0123456789abcdef,name=push", "push", []string{"message.deleted", "message.new"}},
		{"url=http://x.example/h,events=*,secret=0123456789abcdef", "x.example", Kinds},
	}
	for _, g := range good {
		e, err := ParseEndpoint(g.spec)
		if err != nil {
			t.Errorf("ParseEndpoint(%q): %v", g.spec, err)
			continue
		}
		want := slices.Clone(g.kinds)
		slices.Sort(want)
		if e.Name != g.name || !slices.Equal(e.Kinds, want) {
			t.Errorf("ParseEndpoint(%q) = name %q kinds %v, want %q %v", g.spec, e.Name, e.Kinds, g.name, want)
		}
	}
	for _, bad := range []string{
		"",
		"url=ftp://x/h,events=message.new,secret=0123456789abcdef",
		"url=https://x/h,events=message.new,secret=short",
		"url=https://x/h,secret=0123456789abcdef",
		"url=https://x/h,events=message.nope,secret=0123456789abcdef",
		"url=https://x/h,events=message.new,secret=0123456789abcdef,colour=blue",
		"url=https://x/h,url=https://y/h,events=message.new,secret=0123456789abcdef",
		"url=https://u:p@x/h,events=message.new,secret=0123456789abcdef",
		"stray,url=https://x/h,events=message.new,secret=0123456789abcdef",
		"url=https://x/h,events=message.new,secret=0123456789abcdef,name=" + strings.Repeat("n", MaxNameBytes+1),
		strings.Repeat("x", MaxSpecBytes+1),
	} {
		if _, err := ParseEndpoint(bad); err == nil {
			t.Errorf("ParseEndpoint(%.80q) = nil error", bad)
		}
	}
}

func TestSignVerify(t *testing.T) {
	secret, body := []byte("0123456789abcdef"), []byte(`{"id":"7"}`)
	now := time.Unix(1_800_000_000, 0)
	h := Sign(secret, now, body)
	if err := Verify(secret, h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatalf("Verify of a good signature: %v", err)
	}
	for name, c := range map[string]struct {
		secret []byte
		header string
		body   []byte
		now    time.Time
	}{
		"other secret": {[]byte("fedcba9876543210"), h, body, now},
		"other body":   {secret, h, []byte(`{"id":"8"}`), now},
		"stale":        {secret, h, body, now.Add(6 * time.Minute)},
		"from future":  {secret, h, body, now.Add(-6 * time.Minute)},
		"no v1":        {secret, "t=1800000000", body, now},
		"no t":         {secret, h[strings.Index(h, ",")+1:], body, now},
		"garbage":      {secret, "xyz", body, now},
	} {
		if err := Verify(c.secret, c.header, c.body, c.now, 5*time.Minute); err == nil {
			t.Errorf("%s: Verify = nil", name)
		}
	}
}

func FuzzParseEndpoint(f *testing.F) {
	f.Add("url=https://push.example.com/hook,events=message.new,message.deleted,secret=0123456789abcdef,name=p")
	f.Add("url=http://x/h,events=*,secret=0123456789abcdef")
	f.Add("events=,=,,url=")
	f.Fuzz(func(t *testing.T, spec string) {
		e, err := ParseEndpoint(spec)
		if err != nil {
			return
		}
		if len(e.Secret) < MinSecretBytes || len(e.Kinds) == 0 || e.Name == "" || len(e.Name) > MaxNameBytes {
			t.Fatalf("accepted %q as %+v", spec, e)
		}
		for _, k := range e.Kinds {
			if !slices.Contains(Kinds, k) {
				t.Fatalf("accepted kind %q", k)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef")
	now := time.Unix(1_800_000_000, 0)
	f.Add(Sign(secret, now, []byte("{}")), []byte("{}"))
	f.Add("t=,v1=", []byte(""))
	f.Add("t=1800000000,v1=zz,v1=00", []byte("x"))
	f.Fuzz(func(t *testing.T, header string, body []byte) {
		// A header that passes holds the MAC of its time and body under
		// this secret: the same header never passes under another secret.
		if Verify(secret, header, body, now, time.Minute) == nil &&
			Verify([]byte("another secret, 16+ bytes"), header, body, now, time.Minute) == nil {
			t.Fatalf("%q passes under two secrets", header)
		}
	})
}

func TestPublicAddr(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "::1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "::", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "224.0.0.1"} {
		if publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("publicAddr(%s) = true", s)
		}
	}
	for _, s := range []string{"93.184.216.34", "2606:4700::1111", "8.8.8.8"} {
		if !publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("publicAddr(%s) = false", s)
		}
	}
}

// TestHostileWebhookTunnelledAddr: an endpoint whose name resolves to an
// address that reaches a private IPv4 address through a translator
// (NAT64, 6to4: an IPv6-only cloud's metadata service at
// 64:ff9b::a9fe:a9fe), or to a reserved block that is never a public
// receiver, is refused like a private one (all were public before); the
// same translations of public addresses still pass.
func TestHostileWebhookTunnelledAddr(t *testing.T) {
	for _, s := range []string{
		"64:ff9b::7f00:1",      // NAT64 (RFC 6052) to 127.0.0.1
		"64:ff9b::a9fe:a9fe",   // NAT64 to 169.254.169.254, a cloud's metadata service
		"64:ff9b::a00:1",       // NAT64 to 10.0.0.1
		"64:ff9b:1::a00:1",     // local-use NAT64 prefix (RFC 8215)
		"2002:7f00:1::1",       // 6to4 (RFC 3056) of 127.0.0.1
		"2002:a9fe:a9fe::1",    // 6to4 of 169.254.169.254
		"::7f00:1",             // IPv4-compatible (deprecated) 127.0.0.1
		"0.1.2.3",              // 0.0.0.0/8, "this network"
		"192.0.0.170",          // IETF protocol assignments
		"198.18.0.1",           // benchmarking, used inside networks
		"240.0.0.1",            // reserved
		"255.255.255.255",      // broadcast
		"::ffff:0.0.0.1",       // mapped "this network"
		"2001:db8::1",          // documentation
		"100::1",               // discard-only
		"64:ff9b::ffff:ffff",   // NAT64 to broadcast
		"2002:0a00:0001:1::42", // 6to4 of 10.0.0.1
	} {
		if publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("publicAddr(%s) = true", s)
		}
	}
	for _, s := range []string{"64:ff9b::808:808", "2002:808:808::1", "93.184.216.34"} {
		if !publicAddr(netip.MustParseAddr(s)) {
			t.Errorf("publicAddr(%s) = false", s)
		}
	}
}

// TestRefusesLoopback: without AllowPrivate, a delivery to a loopback
// receiver fails at the dial and the receiver never hears of it.
func TestRefusesLoopback(t *testing.T) {
	hit := make(chan struct{}, 1)
	rx := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hit <- struct{}{} }))
	defer rx.Close()
	e, err := ParseEndpoint("url=" + rx.URL + ",events=*,secret=0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	for _, allow := range []bool{false, true} {
		d, err := New(Config{Endpoints: []Endpoint{e}, AllowPrivate: allow})
		if err != nil {
			t.Fatal(err)
		}
		ok := d.post(context.Background(), e, deliveryOf(7))
		d.client.CloseIdleConnections()
		if ok != allow {
			t.Errorf("AllowPrivate %v: delivered = %v", allow, ok)
		}
		select {
		case <-hit:
			if !allow {
				t.Error("the loopback receiver was reached without AllowPrivate")
			}
		default:
			if allow {
				t.Error("the receiver was not reached with AllowPrivate")
			}
		}
	}
}

func TestBackoff(t *testing.T) {
	d, err := New(Config{BackoffBase: time.Second, BackoffMax: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 7: time.Minute, 100: time.Minute} {
		for range 50 {
			if got := d.backoff(attempt); got < want/2 || got > want {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, got, want/2, want)
			}
		}
	}
}

func deliveryOf(pos int64) parley.WebhookDelivery {
	return parley.WebhookDelivery{Endpoint: "x", Pos: pos, ConversationID: "c", Payload: []byte(`{"type":"message.new"}`), Attempts: 1}
}

// FuzzPublicAddr: for any 16-byte address, publicAddr does not panic,
// judges an IPv4-mapped address as its IPv4 address, judges a NAT64 or
// 6to4 address as the IPv4 address it carries, and never passes one that
// netip calls loopback, private, link-local, multicast or unspecified.
func FuzzPublicAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "8.8.8.8", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::ffff:10.0.0.1", "2606:4700::1111", "fe80::1", "64:ff9b:1::1"} {
		b := netip.MustParseAddr(s).As16()
		f.Add(b[:])
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) != 16 {
			return
		}
		ip := netip.AddrFrom16([16]byte(raw))
		got := publicAddr(ip)
		if ip.Is4In6() && got != publicAddr(ip.Unmap()) {
			t.Fatalf("publicAddr(%s) = %v, but of its IPv4 address %v", ip, got, !got)
		}
		var inner netip.Addr
		switch {
		case nat64.Contains(ip):
			inner = netip.AddrFrom4([4]byte(raw[12:16]))
		case sixTo4.Contains(ip):
			inner = netip.AddrFrom4([4]byte(raw[2:6]))
		}
		if inner.IsValid() && got != publicAddr(inner) {
			t.Fatalf("publicAddr(%s) = %v, but of the IPv4 address it carries (%s) %v", ip, got, inner, !got)
		}
		for _, a := range []netip.Addr{ip.Unmap(), inner} {
			if got && a.IsValid() && (a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsMulticast() || a.IsUnspecified()) {
				t.Fatalf("publicAddr(%s) = true for a non-public %s", ip, a)
			}
		}
	})
}

// TestHostileReceiverHugeHeader: a receiver whose answer's header is
// over maxResponseBytes fails the attempt (retried later), however 2xx
// its status: net/http read up to 10 MiB of it for each delivery in
// flight, and took the answer as delivered.
func TestHostileReceiverHugeHeader(t *testing.T) {
	rx := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for i := range 32 { // 32 x 4 KiB: 128 KiB of header
			w.Header().Set("X-Pad-"+strconv.Itoa(i), strings.Repeat("p", 4<<10))
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer rx.Close()
	e, err := ParseEndpoint("url=" + rx.URL + ",events=*,secret=0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Endpoints: []Endpoint{e}, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.client.CloseIdleConnections()
	if d.post(context.Background(), e, deliveryOf(7)) {
		t.Error("an answer with 128 KiB of header counted as delivered")
	}
}
