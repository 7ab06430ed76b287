package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// Session is what Register and Login return: a token for WithToken (or a
// TokenSource), the user it names and when it expires.
type Session struct {
	Token     string      `json:"token"`
	User      parley.User `json:"user"`
	ExpiresAt time.Time   `json:"expires_at"`
}

// Register creates an account (POST /v1/auth/register, docs/protocol.md
// section 1) and returns a session for it. serverURL takes the forms New
// takes. The server normalises the username (Session.User.Name is the name
// it stored). Errors are *parley.Error: EINVALID for a bad name or
// password, ECONFLICT for a name taken or too like another, EFORBIDDEN
// when registration is closed, ERATELIMITED/EUNAVAILABLE with RetryAfter.
// A request that got no answer is a plain error wrapping the transport's.
// It uses http.DefaultClient (RegisterWith takes another, e.g. one that
// trusts a private certificate authority); ctx bounds the request, and
// without a deadline in ctx, DefaultRequestTimeout does.
func Register(ctx context.Context, serverURL, username, password string) (Session, error) {
	return authRequest(ctx, http.DefaultClient, serverURL, "/v1/auth/register", username, password)
}

// RegisterWith is Register over hc.
func RegisterWith(ctx context.Context, hc *http.Client, serverURL, username, password string) (Session, error) {
	return authRequest(ctx, hc, serverURL, "/v1/auth/register", username, password)
}

// Login exchanges a username and password for a session (POST
// /v1/auth/login). Wrong credentials, and a user that does not exist, are
// a *parley.Error with code EUNAUTHORIZED; an account locked after failed
// logins is ERATELIMITED with RetryAfter. Otherwise as Register.
func Login(ctx context.Context, serverURL, username, password string) (Session, error) {
	return authRequest(ctx, http.DefaultClient, serverURL, "/v1/auth/login", username, password)
}

// LoginWith is Login over hc.
func LoginWith(ctx context.Context, hc *http.Client, serverURL, username, password string) (Session, error) {
	return authRequest(ctx, hc, serverURL, "/v1/auth/login", username, password)
}

// authTimeout bounds Register and Login under a ctx with no deadline
// (DefaultRequestTimeout; tests lower it).
var authTimeout = DefaultRequestTimeout

func authRequest(ctx context.Context, hc *http.Client, serverURL, path, username, password string) (Session, error) {
	if _, ok := ctx.Deadline(); !ok {
		// As every call of a Client: a server that never answers must
		// not hold the caller for ever.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, authTimeout)
		defer cancel()
	}
	u, err := httpURL(serverURL, path)
	if err != nil {
		return Session{}, err
	}
	body, err := json.Marshal(map[string]string{"username": username, "password": password})
	if err != nil {
		return Session{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return Session{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	var s Session
	if err := doJSON(hc, req, &s); err != nil {
		return Session{}, err
	}
	if s.Token == "" {
		return Session{}, fmt.Errorf("client: %s: the answer has no token", path)
	}
	return s, nil
}

// httpURL is path on the server that serverURL (any form New takes) names.
func httpURL(serverURL, path string) (string, error) {
	ws, err := wsURL(serverURL)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(ws) // wsURL parsed it
	if u.Scheme == "wss" {
		u.Scheme = "https"
	} else {
		u.Scheme = "http"
	}
	u.Path, u.RawPath = strings.TrimSuffix(u.Path, protocol.Path)+path, ""
	return u.String(), nil
}

// maxHTTPReplyBytes bounds the JSON answers read over plain HTTP (a
// session, an attachment, an error): each is far smaller; a larger one
// is not the server's.
const maxHTTPReplyBytes = 1 << 20

// doJSON makes one request and decodes a 2xx answer into out, or the
// server's error body into a *parley.Error (RetryAfter from
// retry_after_ms, or the Retry-After header). A request that got no
// answer is a plain error wrapping the transport's.
func doJSON(hc *http.Client, req *http.Request, out any) error {
	what := req.Method + " " + req.URL.Path
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("client: %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return doJSONError(req, resp)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPReplyBytes+1))
	if err != nil {
		return fmt.Errorf("client: %s: %w", what, err)
	}
	if len(body) > maxHTTPReplyBytes {
		// Said as it is: cut short, it would fail as JSON that ends early.
		return fmt.Errorf("client: %s: bad reply (HTTP %d): over %d bytes", what, resp.StatusCode, maxHTTPReplyBytes)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("client: %s: bad reply (HTTP %d): %w", what, resp.StatusCode, err)
	}
	return nil
}

// doJSONError is the error of a non-2xx answer: the server's error body
// as a *parley.Error, else statusError.
func doJSONError(req *http.Request, resp *http.Response) error {
	what := req.Method + " " + req.URL.Path
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPReplyBytes))
	if err != nil {
		return fmt.Errorf("client: %s: %w", what, err)
	}
	var e struct {
		Error *protocol.ErrorBody `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != nil && e.Error.Code != "" {
		pe := frameError(e.Error).(*parley.Error)
		if e.Error.RetryAfterMS == 0 {
			pe.RetryAfter = retryAfter(resp)
		}
		return pe
	}
	return statusError(what, resp)
}

// statusError is the error of an HTTP answer that is not the server's
// error body (a proxy's or load balancer's page, or no body at all): a
// *parley.Error with the code its status means in docs/protocol.md and
// Retry-After's wait. So a bare 413 fails its upload rather than sending
// the file again every second, and a bare 429 or 503 waits out
// Retry-After and is tried again. A 408 is a proxy's timeout: unavailable.
func statusError(what string, resp *http.Response) error {
	code := parley.EINVALID
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		code = parley.ERATELIMITED
	case s == http.StatusRequestEntityTooLarge:
		code = parley.ETOOLARGE
	case s == http.StatusUnauthorized:
		code = parley.EUNAUTHORIZED
	case s == http.StatusForbidden:
		code = parley.EFORBIDDEN
	case s == http.StatusNotFound:
		code = parley.ENOTFOUND
	case s == http.StatusRequestTimeout, s >= 500:
		code = parley.EUNAVAILABLE
	}
	return &parley.Error{Code: code, Message: fmt.Sprintf("%s: HTTP %d", what, resp.StatusCode), RetryAfter: retryAfter(resp)}
}

// retryAfter is resp's Retry-After in seconds as a duration (0: none).
func retryAfter(resp *http.Response) time.Duration {
	s, err := strconv.ParseInt(resp.Header.Get("Retry-After"), 10, 64)
	if err != nil {
		return 0
	}
	return serverWait(s, time.Second)
}

// serverWait is a wait the server gave as n units: 0 for n <= 0, and
// the longest duration for one past it. Multiplied as it came, a huge n
// wrapped round to a negative wait, which an app may sleep on (none).
func serverWait(n int64, unit time.Duration) time.Duration {
	switch {
	case n <= 0:
		return 0
	case n > math.MaxInt64/int64(unit):
		return math.MaxInt64
	}
	return time.Duration(n) * unit
}
