package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/tui"
)

// parley chat refuses to start without credentials, and says why a login
// failed before it takes over the terminal.
func TestChatLoginErrors(t *testing.T) {
	srv := servertest.Start(t)
	srv.Register(t, "alice", "correct horse battery")
	t.Setenv("PARLEY_TOKEN", "")
	t.Setenv("PARLEY_PASSWORD", "")
	t.Setenv("PARLEY_USERNAME", "")
	// An address nothing listens on: the server is down.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close()
	ctx := context.Background()
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no credentials", []string{"chat", "--url", srv.URL}, "", "give --token (or PARLEY_TOKEN), or --username"},
		{"wrong password", []string{"chat", "--url", srv.URL, "--username", "alice"}, "wrong\n", "logging in as alice: wrong username or password"},
		// It said "logging in as alice: internal error".
		{"server down", []string{"chat", "--url", down, "--username", "alice"}, "pw\n", "logging in as alice: cannot reach the server (connection refused)"},
		{"no password", []string{"chat", "--url", srv.URL, "--username", "alice"}, "", "reading the password from stdin"},
		{"bad url", []string{"chat", "--url", "ftp://x", "--token", "t"}, "", "scheme must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(ctx, tt.args, strings.NewReader(tt.stdin), &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

// The default outbox file is named by the token's user, read from its
// subject; a token that is no JWT names none (the outbox stays in memory).
func TestChatTokenSubject(t *testing.T) {
	srv := servertest.Start(t)
	if got := tokenSubject(srv.Token(t, "alice-id", "alice")); got != "alice-id" {
		t.Errorf("tokenSubject = %q, want alice-id", got)
	}
	for _, tok := range []string{"", "not-a-jwt", "a.b.c"} {
		if got := tokenSubject(tok); got != "" {
			t.Errorf("tokenSubject(%q) = %q, want none", tok, got)
		}
	}
}

// A second parley chat on an outbox file another one holds (the same
// server and user, or the same --outbox) refuses to start, naming the
// file and the way out, before it takes over the terminal.
func TestChatOutboxInUse(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("PARLEY_TOKEN", "")
	t.Setenv("PARLEY_OUTBOX", "")
	const url = "http://127.0.0.1:1" // never dialled: the refusal comes first
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "alice-id"}).SignedString([]byte("test"))
	if err != nil {
		t.Fatal(err)
	}
	defaultFile, err := tui.OutboxFile(url, "alice-id")
	if err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "other.db")
	for _, tt := range []struct {
		name string
		file string // what the first session holds
		args []string
	}{
		{"default file", defaultFile, nil},
		{"--outbox", other, []string{"--outbox", other}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			first, err := client.New(url, client.WithToken(token), client.WithOutboxFile(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer first.Close()
			// Without the refusal the second session would run the UI:
			// the timeout ends it.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var out, errOut bytes.Buffer
			err = run(ctx, append([]string{"chat", "--url", url, "--token", token}, tt.args...), strings.NewReader(""), &out, &errOut)
			for _, want := range []string{tt.file, "--outbox memory", "quit it first"} {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("second parley chat: err = %v, want it to contain %q", err, want)
				}
			}
		})
	}
}
