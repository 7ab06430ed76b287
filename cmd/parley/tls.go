package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// acmeDir is where automatic certificates are cached, in the data dir: a
// restart reuses them instead of asking the certificate authority again
// (which rate-limits).
const acmeDir = "acme"

// tlsSetup is what the TLS flags ask for: nil config for plain HTTP (the
// default); with --acme-host, the HTTP-01 challenge handler to serve on
// --acme-http-addr.
type tlsSetup struct {
	config    *tls.Config
	challenge http.Handler
}

// tlsFromFlags checks the TLS flags and loads what they name, so a bad
// certificate is an error at start, not at the first handshake.
func (c ServeCmd) tlsFromFlags() (tlsSetup, error) {
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return tlsSetup{}, errors.New("--tls-cert and --tls-key go together")
	case c.TLSCert != "" && len(c.ACMEHost) > 0:
		return tlsSetup{}, errors.New("--acme-host and --tls-cert exclude each other: choose automatic or given certificates")
	case c.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return tlsSetup{}, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		// A renewed certificate is read at the next start.
		return tlsSetup{config: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// No "h2": a WebSocket upgrade needs HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		}}, nil
	case len(c.ACMEHost) > 0:
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			Cache:      autocert.DirCache(filepath.Join(c.DataDir, acmeDir)),
			HostPolicy: autocert.HostWhitelist(c.ACMEHost...),
			Email:      c.ACMEEmail,
		}
		if c.ACMEDirectory != "" {
			m.Client = &acme.Client{DirectoryURL: c.ACMEDirectory}
		}
		cfg := m.TLSConfig()
		// autocert offers h2 too; the WebSocket upgrade needs HTTP/1.1.
		// acme-tls/1 stays for TLS-ALPN challenges on --addr.
		cfg.NextProtos = []string{"http/1.1", acme.ALPNProto}
		cfg.MinVersion = tls.VersionTLS12
		return tlsSetup{config: cfg, challenge: m.HTTPHandler(nil)}, nil
	}
	return tlsSetup{}, nil
}
