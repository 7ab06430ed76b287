package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// TestServeShards: `parley serve --shards 4` on an empty data directory
// serves a log of 4 shards; restarted without the flag (0) it keeps the 4
// recorded; once the log holds events, asking for another count is
// refused with a message that names both counts and the way out.
func TestServeShards(t *testing.T) {
	dir := t.TempDir()
	var errb bytes.Buffer
	start := func(shards int) (*Main, error) {
		cmd := testServe(dir)
		cmd.Shards = shards
		m := NewMain(cmd, &streams{out: &errb, err: &errb})
		return m, m.Run(context.Background())
	}
	m, err := start(4)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Store.(parley.ShardedLog).Shards(); n != 4 {
		t.Fatalf("served a log of %d shards, want 4", n)
	}
	ctx := t.Context()
	for _, id := range []string{"a", "b"} {
		if _, err := m.Store.EnsureUser(ctx, id, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Store.CreateDirect(ctx, "a", "b"); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m, err = start(0)
	if err != nil {
		t.Fatal(err)
	}
	if n := m.Store.(parley.ShardedLog).Shards(); n != 4 {
		t.Fatalf("restarted without --shards: %d shards, want the 4 recorded", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	m, err = start(8)
	if err == nil {
		m.Close()
		t.Fatal("--shards 8 on a log of 4 shards holding events was accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, "4 shard") || !strings.Contains(msg, "8") || !strings.Contains(msg, "migration") {
		t.Fatalf("--shards 8 refused with %q; want the counts and the way out", msg)
	}
}
