package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/protocol"
)

// Session is what a login returns.
type Session = client.Session

// BaseURL turns a server URL as a user types it ("http://host:port",
// "host:port", "ws://host:port/v1/ws") into the HTTP base URL the API
// lives under.
func BaseURL(raw string) (string, error) {
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", parley.Errorf(parley.EINVALID, "server URL %q: %v", raw, err)
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", parley.Errorf(parley.EINVALID, "server URL %q: scheme must be http, https, ws or wss", raw)
	}
	if u.Host == "" {
		return "", parley.Errorf(parley.EINVALID, "server URL %q has no host", raw)
	}
	// Trim until nothing changes, so BaseURL of a base URL is itself:
	// "/v1/ws/" and "/x/v1/ws" both lose their WebSocket path. RawPath
	// would keep an escaped slash ("%2F") the trimmed Path no longer has.
	p := strings.TrimRight(u.Path, "/")
	for strings.HasSuffix(p, protocol.Path) {
		p = strings.TrimRight(strings.TrimSuffix(p, protocol.Path), "/")
	}
	u.Path, u.RawPath = p, ""
	u.RawQuery, u.Fragment = "", ""
	// url.Parse checks a host's port only for some schemes: "ws://::"
	// parses, and the "http://::" it becomes does not.
	out := u.String()
	if _, err := url.Parse(out); err != nil {
		return "", parley.Errorf(parley.EINVALID, "server URL %q: %v", raw, err)
	}
	return out, nil
}

// Login exchanges a username and password for a token (client.Login).
// Wrong credentials are a *parley.Error with code EUNAUTHORIZED.
func Login(ctx context.Context, baseURL, username, password string) (Session, error) {
	return client.Login(ctx, baseURL, username, password)
}

// LookupUser finds a user by username (GET /v1/users/{name}).
func LookupUser(ctx context.Context, baseURL, token, name string) (parley.User, error) {
	var u parley.User
	err := do(ctx, http.MethodGet, baseURL+"/v1/users/"+url.PathEscape(name), token, nil, &u)
	return u, err
}

// do makes one JSON request and decodes the answer into out, or the
// server's error body into a *parley.Error.
func do(ctx context.Context, method, u, token string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return parley.Errorf(parley.EUNAVAILABLE, "%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e struct {
			Error *protocol.ErrorBody `json:"error"`
		}
		if json.NewDecoder(resp.Body).Decode(&e) == nil && e.Error != nil {
			pe := parley.Errorf(e.Error.Code, "%s", e.Error.Message)
			pe.RetryAfter = time.Duration(e.Error.RetryAfterMS) * time.Millisecond
			return pe
		}
		return parley.Errorf(parley.EINTERNAL, "%s %s: %s", method, u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the answer: %w", method, u, err)
	}
	return nil
}

// PasswordLogin is a client.TokenSource that logs in with a username and
// password and logs in again shortly before the token expires (or when
// the server rejected it, which makes the SDK ask again at once). Safe for
// concurrent use.
type PasswordLogin struct {
	BaseURL, Username, Password string

	mu      sync.Mutex
	session Session
}

// NewPasswordLogin returns a token source that starts from an existing
// session (the one the command line already logged in with).
func NewPasswordLogin(baseURL, username, password string, s Session) *PasswordLogin {
	return &PasswordLogin{BaseURL: baseURL, Username: username, Password: password, session: s}
}

// Token returns the current token, logging in again when it is close to
// expiry.
func (p *PasswordLogin) Token(ctx context.Context) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// The SDK asks before every connection attempt: reuse the token while
	// it has more than a minute left, so reconnects cost no password hash.
	if p.session.Token != "" && time.Until(p.session.ExpiresAt) > time.Minute {
		return p.session.Token, nil
	}
	s, err := Login(ctx, p.BaseURL, p.Username, p.Password)
	if err != nil {
		return "", err
	}
	p.session = s
	return s.Token, nil
}
