package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Headers of a delivery.
const (
	// HeaderSignature is "t=<unix seconds>,v1=<hex HMAC-SHA256>": the MAC,
	// keyed by the endpoint's secret, of "<t>.<body>".
	HeaderSignature = "Parley-Signature"
	// HeaderEventID is the idempotency key: the event's position, the same
	// on every attempt.
	HeaderEventID = "Parley-Event-Id"
	// HeaderEventType is the kind (message.new, ...).
	HeaderEventType = "Parley-Event-Type"
	// HeaderAttempt counts attempts from 1.
	HeaderAttempt = "Parley-Delivery-Attempt"
)

// Sign returns the Parley-Signature value of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(ts))
	m.Write([]byte("."))
	m.Write(body)
	return m.Sum(nil)
}

// ErrSignature is Verify's error for a missing, malformed, wrong or stale
// signature.
var ErrSignature = errors.New("webhook: bad signature")

// Verify checks a Parley-Signature header against body: the MAC must
// match (compared in constant time) and t be within tolerance of now,
// which refuses a replay of an old delivery. docs/integrate.md shows the
// same check for receivers.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrSignature
	}
	got, err := hex.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(secret, ts, body)) {
		return ErrSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return ErrSignature
	}
	return nil
}
