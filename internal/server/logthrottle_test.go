package server

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestThrottledHandler: one kind of warning repeated logs once per
// interval, and the next line says how many were held back; other kinds
// and records below Warn pass.
func TestThrottledHandler(t *testing.T) {
	var buf bytes.Buffer
	h := newThrottledHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), 10*time.Second)
	log := slog.New(h).With("node", "n1")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	emit := func(at time.Duration, lvl slog.Level, msg, err string) {
		r := slog.NewRecord(t0.Add(at), lvl, msg, 0)
		r.AddAttrs(slog.String("err", err))
		if err := log.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		emit(time.Duration(i)*time.Millisecond, slog.LevelError, "internal error", "sqlite: commit: database or disk is full")
		emit(time.Duration(i)*time.Millisecond, slog.LevelDebug, "debug line", "x")
	}
	emit(time.Second, slog.LevelWarn, "unavailable", "another kind")
	emit(11*time.Second, slog.LevelError, "internal error", "sqlite: commit: database or disk is full")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	errs, debug := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, "level=ERROR"):
			errs++
		case strings.Contains(l, "level=DEBUG"):
			debug++
		}
	}
	if errs != 2 || debug != 100 || len(lines) != 103 {
		t.Fatalf("%d error lines, %d debug, %d in all; want 2, 100, 103:\n%s", errs, debug, len(lines), buf.String())
	}
	if last := lines[len(lines)-1]; !strings.Contains(last, "suppressed=99") || !strings.Contains(last, "node=n1") {
		t.Fatalf("the line after the interval: %s, want suppressed=99 and the logger's attributes", last)
	}
}
