package server

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// logThrottleEvery is how often one kind of warning or error is logged at
// most (see throttledHandler).
const logThrottleEvery = 10 * time.Second

// throttledHandler passes Warn and Error records on at most once per
// `every` per kind, a kind being the level, the message and the start of
// the "err" attribute: an error repeated on every request (a full disk
// fails every send) makes one line per interval, not one per request.
// The next line of a kind that was held back carries
// "suppressed": how many were. Records below Warn pass unthrottled.
type throttledHandler struct {
	next slog.Handler
	t    *logThrottle // shared by the handlers WithAttrs and WithGroup derive
}

type logThrottle struct {
	every time.Duration
	mu    sync.Mutex
	kinds map[string]*logKind
}

type logKind struct {
	last       time.Time
	suppressed int
}

// maxLogKinds bounds the kinds remembered; past it, kinds quiet for an
// interval are forgotten.
const maxLogKinds = 1024

// errKeyLen is how much of an error's text tells kinds apart: enough for
// "sqlite: commit: database or disk is full", not the ids some errors end
// with.
const errKeyLen = 80

func newThrottledHandler(next slog.Handler, every time.Duration) *throttledHandler {
	return &throttledHandler{next: next, t: &logThrottle{every: every, kinds: map[string]*logKind{}}}
}

func (h *throttledHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *throttledHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	key := r.Level.String() + "\x00" + r.Message
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			s := a.Value.String()
			key += "\x00" + s[:min(len(s), errKeyLen)]
			return false
		}
		return true
	})
	n, ok := h.t.allow(key, r.Time)
	if !ok {
		return nil
	}
	if n > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", n))
	}
	return h.next.Handle(ctx, r)
}

// allow reports whether a record of kind key may be logged at now, and
// how many of that kind were held back since the last one logged.
func (t *logThrottle) allow(key string, now time.Time) (int, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.kinds[key]
	if k == nil {
		if len(t.kinds) >= maxLogKinds {
			for key, k := range t.kinds {
				if now.Sub(k.last) >= t.every {
					delete(t.kinds, key)
				}
			}
		}
		t.kinds[key] = &logKind{last: now}
		return 0, true
	}
	if now.Sub(k.last) < t.every {
		k.suppressed++
		return 0, false
	}
	n := k.suppressed
	k.last, k.suppressed = now, 0
	return n, true
}

func (h *throttledHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &throttledHandler{next: h.next.WithAttrs(as), t: h.t}
}

func (h *throttledHandler) WithGroup(name string) slog.Handler {
	return &throttledHandler{next: h.next.WithGroup(name), t: h.t}
}
