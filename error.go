package parley

import (
	"errors"
	"fmt"
	"time"
)

// Error codes. They are the wire's codes too: the HTTP and WebSocket layers
// map each to a status in one table, and docs/protocol.md lists them.
const (
	EINVALID      = "invalid"      // a field is missing, malformed or out of range
	EBADJSON      = "bad_json"     // the frame or body is not valid JSON (or not UTF-8)
	EUNKNOWNOP    = "unknown_op"   // the op is not one the server knows
	ENOTFOUND     = "not_found"    // no such thing, or the caller is not a member
	ECONFLICT     = "conflict"     // e.g. a username that is taken
	EUNAUTHORIZED = "unauthorized" // missing, forged or expired credentials
	EFORBIDDEN    = "forbidden"    // authenticated, but not allowed
	ERATELIMITED  = "rate_limited" // over a rate limit; RetryAfter says when to retry
	ETOOLARGE     = "too_large"    // a body, frame or file over its limit
	EUNSUPPORTED  = "unsupported"  // e.g. an upload that is not an image
	EUNAVAILABLE  = "unavailable"  // shutting down or overloaded; retry
	EINTERNAL     = "internal"     // a bug or a failed dependency; details are logged
)

// Error is an error a caller can act on: Code is one of the codes above and
// Message is safe to show to the user.
type Error struct {
	Code    string
	Message string
	// RetryAfter is set with ERATELIMITED and EUNAVAILABLE.
	RetryAfter time.Duration
}

func (e *Error) Error() string { return fmt.Sprintf("parley: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, "" for nil,
// and EINTERNAL for any other error.
func ErrorCode(err error) string {
	return errorPart(err, func(e *Error) string { return e.Code }, EINTERNAL)
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic text for any other error so internals never reach a client.
func ErrorMessage(err error) string {
	return errorPart(err, func(e *Error) string { return e.Message }, "internal error")
}

// errorPart returns part of the first *Error in err's chain, "" for nil,
// and other for any other error.
func errorPart(err error, part func(*Error) string, other string) string {
	if err == nil {
		return "" // before e, which escapes: no allocation for a nil error
	}
	var e *Error
	if errors.As(err, &e) {
		return part(e)
	}
	return other
}

// ErrNotFound is returned for a conversation or message that does not
// exist or that the caller cannot see; the two are indistinguishable on
// purpose, so existence does not leak.
var ErrNotFound = &Error{Code: ENOTFOUND, Message: "not found"}
