package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

func TestMain(m *testing.M) {
	// The test binary doubles as `parley` for tests that run it as a
	// process (to kill it with SIGKILL): see startParley.
	if os.Getenv(runAsParley) == "1" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// testServe is a serve command for a test: one node on a free port with
// its data in dir, the memory broker, and small limits.
func testServe(dir string) ServeCmd {
	return ServeCmd{
		Addr: "127.0.0.1:0", DataDir: dir, LogLevel: "warn", ShutdownTimeout: 5 * time.Second,
		Broker: "memory", PresenceGrace: 5 * time.Second, HeartbeatInterval: 4 * time.Second,
		HeartbeatTimeout: 9 * time.Second, ResumeLimit: 100, SendQueueBytes: 256 << 10,
		MessagesPerSecond: 10, MessageBurst: 10, IPMessagesPerSecond: 10, IPMessageBurst: 10,
		TypingPerSecond: 1, TypingBurst: 1, ConnectsPerSecond: 10, ConnectBurst: 10,
	}
}

func TestServeMintCreate(t *testing.T) {
	dir := t.TempDir()
	var errb bytes.Buffer
	cmd := testServe(dir)
	cmd.MetricsAddr = "127.0.0.1:0"
	m := NewMain(cmd, &streams{out: &errb, err: &errb})
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
	cl, err := auth.Verify(secret, login.Token, time.Now())
	if err != nil {
		t.Fatalf("login token: %v", err)
	}
	// token mint for an existing account by its username: a token for
	// that account (its id, not a new user named like it).
	out.Reset()
	if err := run(context.Background(), []string{"token", "mint", "--user", "Carol", "--data-dir", dir}, nil, &out, &out); err != nil {
		t.Fatalf("token mint --user Carol: %v", err)
	}
	req, _ = http.NewRequest("GET", "http://"+m.Addr+"/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(out.String()))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&me)
	resp.Body.Close()
	if resp.StatusCode != 200 || me.ID != cl.UserID || me.Name != "carol" {
		t.Fatalf("GET /v1/me with a token minted for carol: %s %+v, want id %s", resp.Status, me, cl.UserID)
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

// TestUserCreate: parley user create takes --store as parley serve does
// (SQLite at a path, PostgreSQL), normalises the name as registration
// does, and a failure prints "parley: " once.
func TestUserCreate(t *testing.T) {
	stores := map[string]string{"sqlite": "sqlite:" + filepath.Join(t.TempDir(), "other.db")}
	if os.Getenv(pgtest.EnvVar) != "" {
		stores["postgres"] = pgtest.Schema(t)
	}
	for kind, store := range stores {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			create := func(name string) (string, error) {
				var out bytes.Buffer
				err := run(ctx, []string{"user", "create", name, "--store", store, "--password", "correct horse battery",
					"--data-dir", filepath.Join(t.TempDir(), "unused")}, nil, &out, &out)
				return out.String(), err
			}
			if out, err := create("Carol"); err != nil || !strings.Contains(out, "created user carol") {
				t.Fatalf("user create Carol: %q %v", out, err)
			}
			_, err := create("CAROL")
			if parley.ErrorCode(err) != parley.ECONFLICT {
				t.Fatalf("user create CAROL again: %v, want conflict", err)
			}
			if line := errorLine(err); !strings.HasPrefix(line, "parley: conflict: ") || strings.Contains(line, "parley: parley:") {
				t.Errorf("printed %q, want one parley: prefix", line)
			}
			st, err := openStore(ctx, store, "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if u, err := st.UserByName(ctx, "carol"); err != nil || u.Name != "carol" {
				t.Fatalf("carol in the --store store: %+v %v", u, err)
			}
		})
	}
	if got := errorLine(errors.New("reading the password: EOF")); got != "parley: reading the password: EOF" {
		t.Errorf("errorLine of a plain error: %q", got)
	}
}
