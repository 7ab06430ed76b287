package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parleychat/parley/internal/auth"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServeMintCreate(t *testing.T) {
	dir := t.TempDir()
	var errb bytes.Buffer
	m := NewMain(ServeCmd{
		Addr: "127.0.0.1:0", DataDir: dir, LogLevel: "warn", ShutdownTimeout: 5 * time.Second,
		Broker: "memory", PresenceGrace: 5 * time.Second, HeartbeatInterval: 4 * time.Second,
		HeartbeatTimeout: 9 * time.Second, ResumeLimit: 100, SendQueueBytes: 256 << 10,
		MessagesPerSecond: 10, MessageBurst: 10, IPMessagesPerSecond: 10, IPMessageBurst: 10,
		TypingPerSecond: 1, TypingBurst: 1, ConnectsPerSecond: 10, ConnectBurst: 10,
		MetricsAddr: "127.0.0.1:0",
	}, &streams{out: &errb, err: &errb})
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, secretFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("secret mode %v, want 0600", fi.Mode().Perm())
	}

	// token mint uses the secret the server generated.
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "mint", "--user", "alice", "--data-dir", dir}, nil, &out, &out); err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out.String())
	req, _ := http.NewRequest("GET", "http://"+m.Addr+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var me struct{ ID, Name string }
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if resp.StatusCode != 200 || me.ID != "alice" {
		t.Fatalf("GET /v1/me with a minted token: %s %+v", resp.Status, me)
	}
	for _, u := range []string{"/healthz", "/readyz", "/", "http://" + m.MetricsAddr + "/metrics"} {
		if strings.HasPrefix(u, "/") {
			u = "http://" + m.Addr + u
		}
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %s", u, resp.Status)
		}
	}
	// With --metrics-addr and no --metrics-token, the public address has
	// no /metrics.
	resp, err = http.Get("http://" + m.Addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /metrics on --addr: %s, want 404", resp.Status)
	}

	// user create, password from stdin; then log in over HTTP.
	out.Reset()
	err = run(context.Background(), []string{"user", "create", "carol", "--data-dir", dir},
		strings.NewReader("correct horse battery\n"), &out, &out)
	if err != nil {
		t.Fatalf("user create: %v (%s)", err, out.String())
	}
	body := `{"username":"carol","password":"correct horse battery"}`
	resp, err = http.Post("http://"+m.Addr+"/v1/auth/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&login)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login: %s", resp.Status)
	}
	secret, _ := loadSecret("", dir, false)
	if _, err := auth.Verify(secret, login.Token, time.Now()); err != nil {
		t.Fatalf("login token: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestServeRunStopsOnCancel(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--data-dir", dir, "--log-level", "error"}, nil, &out, &out)
	}()
	// Wait until it serves (the signal a user would send comes later).
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

func TestBadSecret(t *testing.T) {
	if _, err := loadSecret("short", t.TempDir(), true); err == nil {
		t.Fatal("a short secret was accepted")
	}
	if _, err := loadSecret("", t.TempDir(), false); err == nil {
		t.Fatal("token mint without a secret did not fail")
	}
}
