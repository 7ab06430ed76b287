package server

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/protocol"
)

// queued decodes the durable events queued to c (not started: nothing
// writes them) as "shard/pos" and empties its queue.
func queued(t *testing.T, c *conn) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var got []string
	for _, f := range c.q {
		var fr protocol.Frame
		var ev parley.Event
		if err := json.Unmarshal(f.b, &fr); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(fr.Data, &ev); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d", ev.Shard, ev.Pos))
	}
	c.q, c.qBytes = nil, 0
	return got
}

// TestHubShardSequencers: the hub sequences each shard on its own. Events
// of several shards committed out of order (as the publishes of different
// nodes' batches arrive) are delivered in position order within each
// shard, each once, and a gap in one shard holds back none of the others;
// a connection registered beyond what the node delivered of one shard (a
// lagging node: its replay covers up to the store's head there) gets that
// shard's events only after its floor, and every other shard's all.
func TestHubShardSequencers(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "parley.db"), sqlstore.WithShards(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	h := newHub(store, nil, newMetrics())
	if h.shards != 4 {
		t.Fatalf("hub of %d shards, want the store's 4", h.shards)
	}
	h.start([]int64{0, 0, 0, 0})
	s := &Server{metrics: h.metrics, cfg: Config{Limits: Limits{SendQueueBytes: 1 << 20}}}
	a := &conn{s: s, user: parley.User{ID: "a"}}
	heads, _ := h.register(a, nil, nil)
	if !slices.Equal(heads, []int64{0, 0, 0, 0}) {
		t.Fatalf("heads %v", heads)
	}
	ev := func(shard int, pos int64) parley.Event {
		return parley.Event{Shard: shard, Pos: pos, Type: parley.EventNewMessage, ConversationID: fmt.Sprint("c", shard), Audience: []string{"a", "b"}}
	}
	step := func(e parley.Event, want ...string) {
		t.Helper()
		h.accept(e)
		if got := queued(t, a); !slices.Equal(got, want) {
			t.Fatalf("after %d/%d: delivered %v, want %v", e.Shard, e.Pos, got, want)
		}
	}
	step(ev(1, 2))
	step(ev(0, 2))
	step(ev(1, 1), "1/1", "1/2") // shard 0's gap holds back nothing of shard 1
	step(ev(2, 1), "2/1")
	step(ev(1, 2)) // a duplicate
	step(ev(0, 1), "0/1", "0/2")
	step(ev(0, 3), "0/3")
	step(ev(2, 1)) // a duplicate of another shard
	step(ev(1, 3), "1/3")
	h.mu.Lock()
	delivered := slices.Clone(h.delivered)
	h.mu.Unlock()
	if !slices.Equal(delivered, []int64{3, 3, 1, 0}) {
		t.Fatalf("delivered %v, want [3 3 1 0]", delivered)
	}

	// b resumes from {1: 5} on this node, which delivered shard 1 up to
	// 3: behind names shard 1 alone, b's replay there goes to the
	// store's head (6), and the hub skips b for shard 1 up to it.
	from := []int64{0, 5, 0, 0}
	if got := h.behind(from); !slices.Equal(got, []int{1}) {
		t.Fatalf("behind %v, want [1]", got)
	}
	b := &conn{s: s, user: parley.User{ID: "b"}}
	heads, quiet := h.register(b, from, []int64{0, 6, 0, 0})
	if !slices.Equal(heads, []int64{3, 6, 1, 0}) {
		t.Fatalf("heads %v, want [3 6 1 0]", heads)
	}
	if quiet[1] {
		t.Fatal("shard 1 is quiet for b, though the node has not delivered its position")
	}
	for _, e := range []parley.Event{ev(1, 4), ev(1, 5), ev(0, 4), ev(1, 6), ev(1, 7), ev(3, 1)} {
		h.accept(e)
	}
	if got, want := queued(t, b), []string{"0/4", "1/7", "3/1"}; !slices.Equal(got, want) {
		t.Fatalf("b got %v, want %v", got, want)
	}
	if got, want := queued(t, a), []string{"1/4", "1/5", "0/4", "1/6", "1/7", "3/1"}; !slices.Equal(got, want) {
		t.Fatalf("a got %v, want %v", got, want)
	}
}
