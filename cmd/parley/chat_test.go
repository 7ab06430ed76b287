package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/parleychat/parley/internal/servertest"
)

// parley chat refuses to start without credentials, and says why a login
// failed before it takes over the terminal.
func TestChatLoginErrors(t *testing.T) {
	srv := servertest.Start(t)
	srv.Register(t, "alice", "correct horse battery")
	t.Setenv("PARLEY_TOKEN", "")
	t.Setenv("PARLEY_PASSWORD", "")
	t.Setenv("PARLEY_USERNAME", "")
	ctx := context.Background()
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"no credentials", []string{"chat", "--url", srv.URL}, "", "give --token (or PARLEY_TOKEN), or --username"},
		{"wrong password", []string{"chat", "--url", srv.URL, "--username", "alice"}, "wrong\n", "logging in as alice:"},
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
