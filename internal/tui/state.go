package tui

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// StateDir is where the terminal client keeps what must outlive a run
// (its outbox): $XDG_STATE_HOME/parley, or ~/.local/state/parley when
// XDG_STATE_HOME is unset or not absolute (the XDG Base Directory rules).
func StateDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "parley"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no state directory: %w (set XDG_STATE_HOME or --outbox)", err)
	}
	return filepath.Join(home, ".local", "state", "parley"), nil
}

// OutboxFile returns the default outbox file of user userID on the server
// at baseURL, in StateDir, creating the directory (mode 0700) and the file
// (mode 0600: it holds unsent messages) if needed. One file per server
// and user, so two accounts never share (and send) each other's messages.
func OutboxFile(baseURL, userID string) (string, error) {
	if userID == "" {
		return "", errors.New("outbox file: no user id")
	}
	dir, err := StateDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("outbox file: %w", err)
	}
	host := baseURL
	if u, err := url.Parse(baseURL); err == nil && u.Host != "" {
		host = u.Host
	}
	path := filepath.Join(dir, "outbox-"+fileSafe(host)+"-"+fileSafe(userID)+".db")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("outbox file: %w", err)
	}
	return path, f.Close()
}

// fileSafe keeps letters, digits, '.' and '-' of s, and makes anything
// else '_', so a host:port or an id is one file name on every system.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			return r
		}
		return '_'
	}, s)
}
