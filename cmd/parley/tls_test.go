package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
	"github.com/coder/websocket"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/protocol"
)

// parseServe is `parley serve args...` parsed with every default, as the
// command line would give it to Run.
func parseServe(t *testing.T, args ...string) ServeCmd {
	t.Helper()
	var cli CLI
	p, err := kong.New(&cli, kong.Name("parley"), kong.Exit(func(int) { t.Fatal("kong exited") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(append([]string{"serve"}, args...)); err != nil {
		t.Fatal(err)
	}
	return cli.Serve
}

// testCert writes a self-signed certificate for 127.0.0.1 and localhost
// (its own CA) into dir and returns the files and a pool that trusts it.
func testCert(t *testing.T, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "parley test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

// TestServeTLS serves HTTPS and wss:// with --tls-cert/--tls-key: a real
// handshake over HTTP and WebSocket, refused by a client that does not
// trust the certificate, and the Go SDK connecting and sending with
// client.WithTLSConfig (and logging in with LoginWith).
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, roots := testCert(t, t.TempDir())
	var logb bytes.Buffer
	m := NewMain(parseServe(t, "--addr", "127.0.0.1:0", "--data-dir", dir, "--tls-cert", certFile, "--tls-key", keyFile),
		&streams{out: &logb, err: &logb})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if want := "https://" + m.Addr; m.URL != want || !strings.Contains(logb.String(), "addr="+want) {
		t.Fatalf("URL %q, log %q: want %s", m.URL, logb.String(), want)
	}
	tlsCfg := &tls.Config{RootCAs: roots}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer hc.CloseIdleConnections()

	resp, err := hc.Get(m.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.NegotiatedProtocol == "h2" {
		t.Fatalf("GET /healthz over TLS: %s, TLS %v", resp.Status, resp.TLS)
	}
	if resp, err := http.Get(m.URL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatal("a client that does not trust the certificate got an answer")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted: %v, want a certificate error", err)
	}

	// A WebSocket over wss://, by hand.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"token", "mint", "--user", "alice", "--data-dir", dir}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	ws, _, err := websocket.Dial(ctx, "wss://"+m.Addr+protocol.Path, &websocket.DialOptions{HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.Write(ctx, websocket.MessageText, []byte(`{"op":"hello","data":{"token":"`+tok+`"}}`)); err != nil {
		t.Fatal(err)
	}
	if f := readFrame(t, ctx, ws); f.Type != protocol.TypeWelcome {
		t.Fatalf("hello over wss: %+v", f)
	}
	ws.Close(websocket.StatusNormalClosure, "")

	// The SDK, trusting the test CA.
	if err := run(ctx, []string{"user", "create", "bob", "--data-dir", dir}, strings.NewReader("correct horse battery\n"), &out, &out); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Login(ctx, m.URL, "bob", "correct horse battery"); err == nil {
		t.Fatal("client.Login trusted the test certificate without being told")
	}
	sess, err := client.LoginWith(ctx, hc, m.URL, "bob", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	c := servertest.Connect(ctx, t, m.URL, client.WithToken(sess.Token), client.WithTLSConfig(tlsCfg))
	cv, err := c.CreateGroup(ctx, "secure", nil)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := c.Send(ctx, cv.ID, "over wss")
	if err != nil {
		t.Fatal(err)
	}
	if stored, err := msg.Wait(ctx); err != nil || stored.Seq != 1 {
		t.Fatalf("send over wss: %+v %v", stored, err)
	}
}

// TestServeTLSFlags: the TLS flags go together or not at all, and a bad
// certificate is an error at start.
func TestServeTLSFlags(t *testing.T) {
	certFile, keyFile, _ := testCert(t, t.TempDir())
	for name, args := range map[string][]string{
		"cert without key": {"--tls-cert", certFile},
		"key without cert": {"--tls-key", keyFile},
		"cert and acme":    {"--tls-cert", certFile, "--tls-key", keyFile, "--acme-host", "chat.example.com"},
		"key for cert":     {"--tls-cert", keyFile, "--tls-key", certFile},
	} {
		m := NewMain(parseServe(t, append([]string{"--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...),
			&streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
		if err := m.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%s: %v, want an error naming the flag", name, err)
		}
		m.Close()
	}
}

// TestServeACME starts with --acme-host (no certificate authority is
// reachable here, and none is asked: no handshake names the host): the
// challenge listener answers HTTP-01 paths itself and redirects the rest
// to https://, and a handshake for a host not listed is refused without
// asking the authority.
func TestServeACME(t *testing.T) {
	dir := t.TempDir()
	m := NewMain(parseServe(t, "--addr", "127.0.0.1:0", "--data-dir", dir, "--acme-host", "chat.example.com",
		"--acme-http-addr", "127.0.0.1:0", "--acme-directory", "http://127.0.0.1:1/directory"),
		&streams{out: &bytes.Buffer{}, err: &bytes.Buffer{}})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if m.URL != "https://"+m.Addr || m.ACMEHTTPAddr == "" {
		t.Fatalf("URL %q, challenge address %q", m.URL, m.ACMEHTTPAddr)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", "http://"+m.ACMEHTTPAddr+"/v1/me", nil)
	req.Host = "chat.example.com"
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "https://chat.example.com/v1/me" {
		t.Fatalf("plain request on the challenge listener: %s, Location %q", resp.Status, loc)
	}
	req, _ = http.NewRequest("GET", "http://"+m.ACMEHTTPAddr+"/.well-known/acme-challenge/unknown", nil)
	req.Host = "chat.example.com"
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown challenge: %s, want 404 (answered by autocert, not redirected)", resp.Status)
	}
	conn, err := tls.Dial("tcp", m.Addr, &tls.Config{ServerName: "other.example.com"})
	if err == nil {
		conn.Close()
		t.Fatal("a handshake for a host not in --acme-host succeeded")
	}
}
