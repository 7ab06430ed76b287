package server_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
	"github.com/parleychat/parley/internal/sqlstore"
	"github.com/parleychat/parley/internal/webhook"
	"github.com/parleychat/parley/protocol"
)

// TestWebhookDeliveryShards: on a log of 8 shards, with messages in ten
// groups spread over the shards, the endpoint gets every message.new
// exactly once (positions repeat across shards; the idempotency key is
// "shard:pos" and the payload says the shard), each group's messages in
// order.
func TestWebhookDeliveryShards(t *testing.T) {
	const shards, groups, per = 8, 10, 4
	rx := newReceiver(t)
	srv := servertest.Start(t, hooksConfig(rx.srv.URL, []string{webhook.KindMessageNew}, nil),
		servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
			return sqlite.Open(ctx, filepath.Join(dir, "parley.db"), sqlstore.WithShards(shards))
		}))
	a := helloV2(t, srv, srv.Token(t, "alice", "Alice"), nil)
	var convs []string
	used := map[int]bool{}
	for i := range groups {
		srv.Token(t, fmt.Sprint("u", i), fmt.Sprint("U", i))
		var g parley.Conversation
		a.do(protocol.OpCreateGroup, protocol.CreateGroup{Title: fmt.Sprint("g", i), MemberIDs: []string{fmt.Sprint("u", i)}}, &g)
		convs = append(convs, g.ID)
		used[parley.ShardOf(g.ID, shards)] = true
	}
	if len(used) < 3 {
		t.Fatalf("the groups are in %d shards; the test needs several", len(used))
	}
	want := map[string][]string{}
	for i := range per {
		for _, c := range convs {
			m := a.send(c, fmt.Sprint(c, i), "x")
			want[c] = append(want[c], m.ID)
		}
	}
	got := rx.waitOK(groups * per)
	ids := map[string]int{}
	order := map[string][]string{}
	for _, d := range got {
		ids[d.id]++
		sh := parley.ShardOf(d.p.Event.ConversationID, shards)
		if d.p.Shard != sh || d.p.Event.Shard != sh || d.id != fmt.Sprintf("%d:%d", sh, d.p.Pos) || d.p.ID != d.id {
			t.Fatalf("delivery %s: payload id %s shard %d pos %d, event shard %d; the conversation's shard is %d",
				d.id, d.p.ID, d.p.Shard, d.p.Pos, d.p.Event.Shard, sh)
		}
		order[d.p.Event.ConversationID] = append(order[d.p.Event.ConversationID], d.p.Event.Message.ID)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("delivery %s answered 2xx %d times", id, n)
		}
	}
	for _, c := range convs {
		if fmt.Sprint(order[c]) != fmt.Sprint(want[c]) {
			t.Errorf("%s: delivered %v, want %v in order", c, order[c], want[c])
		}
	}
	if len(got) != groups*per {
		t.Errorf("%d deliveries, want %d", len(got), groups*per)
	}
}
