package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/parleychat/parley"
)

// testWebhookQueue: the cursor moves only from where it is, deliveries
// come out per conversation in order, a claim leases them, retry and
// finish work, and the backlog counts per endpoint.
func testWebhookQueue(t *testing.T, s parley.Store) {
	q, ok := s.(parley.WebhookQueue)
	if !ok {
		t.Fatalf("%T does not implement parley.WebhookQueue", s)
	}
	if c := must[int64](t, "WebhookCursor")(q.WebhookCursor(ctx(t), 0)); c != -1 {
		t.Fatalf("fresh WebhookCursor = %d, want -1", c)
	}
	d := func(ep string, pos int64, conv string) parley.WebhookDelivery {
		return parley.WebhookDelivery{Endpoint: ep, Pos: pos, ConversationID: conv, Payload: []byte(`{"pos":` + string(rune('0'+pos)) + `}`)}
	}
	if err := q.EnqueueWebhooks(ctx(t), 0, -1, 5, []parley.WebhookDelivery{d("a", 1, "c1"), d("a", 2, "c2"), d("a", 3, "c1"), d("b", 1, "c1")}); err != nil {
		t.Fatalf("EnqueueWebhooks: %v", err)
	}
	err := q.EnqueueWebhooks(ctx(t), 0, -1, 6, []parley.WebhookDelivery{d("a", 6, "c1")})
	wantCode(t, "EnqueueWebhooks from a stale cursor", err, parley.ECONFLICT)
	if c := must[int64](t, "WebhookCursor")(q.WebhookCursor(ctx(t), 0)); c != 5 {
		t.Fatalf("WebhookCursor = %d, want 5", c)
	}
	if b := must[map[string]int](t, "WebhookBacklog")(q.WebhookBacklog(ctx(t))); b["a"] != 3 || b["b"] != 1 || len(b) != 2 {
		t.Fatalf("WebhookBacklog = %v, want a:3 b:1", b)
	}

	now := time.Now()
	lease := now.Add(time.Minute)
	got := must[[]parley.WebhookDelivery](t, "ClaimWebhooks")(q.ClaimWebhooks(ctx(t), "a", now, lease, 10))
	if pos := positions(got); !slices.Equal(pos, []int64{1, 2}) {
		t.Fatalf("first claim = %v, want [1 2] (3 waits for 1, its conversation's older one)", pos)
	}
	if got[0].Attempts != 1 || !bytes.Equal(got[0].Payload, d("a", 1, "c1").Payload) || got[0].ConversationID != "c1" {
		t.Fatalf("claimed %+v", got[0])
	}
	if again := must[[]parley.WebhookDelivery](t, "ClaimWebhooks")(q.ClaimWebhooks(ctx(t), "a", now, lease, 10)); len(again) != 0 {
		t.Fatalf("claim while leased = %v, want none", positions(again))
	}
	// 1 fails and is retried at once; 2 is delivered.
	if err := q.RetryWebhook(ctx(t), "a", 0, 1, now); err != nil {
		t.Fatal(err)
	}
	if err := q.FinishWebhook(ctx(t), "a", 0, 2); err != nil {
		t.Fatal(err)
	}
	got = must[[]parley.WebhookDelivery](t, "ClaimWebhooks")(q.ClaimWebhooks(ctx(t), "a", now, lease, 10))
	if pos := positions(got); !slices.Equal(pos, []int64{1}) || got[0].Attempts != 2 {
		t.Fatalf("claim after retry = %+v, want pos 1 attempt 2", got)
	}
	if err := q.FinishWebhook(ctx(t), "a", 0, 1); err != nil {
		t.Fatal(err)
	}
	got = must[[]parley.WebhookDelivery](t, "ClaimWebhooks")(q.ClaimWebhooks(ctx(t), "a", now, lease, 10))
	if pos := positions(got); !slices.Equal(pos, []int64{3}) {
		t.Fatalf("claim after 1 finished = %v, want [3]", pos)
	}
	if b := must[map[string]int](t, "WebhookBacklog")(q.WebhookBacklog(ctx(t))); b["a"] != 1 {
		t.Fatalf("WebhookBacklog = %v, want a:1", b)
	}
}

// testWebhookQueueShards: on a log of 4 shards each shard has its own
// cursor (-1 until its first move), deliveries of the same position in
// two shards are two deliveries, finished one by one, and a shard outside
// the log or a delivery of another shard than the cursor's is EINVALID.
func testWebhookQueueShards(t *testing.T, s parley.Store) {
	q := optional[parley.WebhookQueue](t, s)
	d := func(shard int, pos int64, conv string) parley.WebhookDelivery {
		return parley.WebhookDelivery{Endpoint: "a", Shard: shard, Pos: pos, ConversationID: conv, Payload: []byte(`{}`)}
	}
	if err := q.EnqueueWebhooks(ctx(t), 0, -1, 4, []parley.WebhookDelivery{d(0, 4, "c0")}); err != nil {
		t.Fatal(err)
	}
	if err := q.EnqueueWebhooks(ctx(t), 3, -1, 2, []parley.WebhookDelivery{d(3, 1, "c3"), d(3, 2, "c3")}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "a second start of shard 3", q.EnqueueWebhooks(ctx(t), 3, -1, 9, nil), parley.ECONFLICT)
	if err := q.EnqueueWebhooks(ctx(t), 3, 2, 4, []parley.WebhookDelivery{d(3, 4, "c3b")}); err != nil {
		t.Fatal(err)
	}
	for shard, want := range []int64{4, -1, -1, 4} {
		if c := must[int64](t, "WebhookCursor")(q.WebhookCursor(ctx(t), shard)); c != want {
			t.Fatalf("WebhookCursor(%d) = %d, want %d", shard, c, want)
		}
	}
	wantCode(t, "WebhookCursor of shard 4", func() error { _, err := q.WebhookCursor(ctx(t), 4); return err }(), parley.EINVALID)
	wantCode(t, "EnqueueWebhooks of shard 4", q.EnqueueWebhooks(ctx(t), 4, -1, 1, nil), parley.EINVALID)
	wantCode(t, "a delivery of shard 1 with shard 2's cursor", q.EnqueueWebhooks(ctx(t), 2, -1, 1, []parley.WebhookDelivery{d(1, 1, "c1")}), parley.EINVALID)

	now := time.Now()
	got := must[[]parley.WebhookDelivery](t, "ClaimWebhooks")(q.ClaimWebhooks(ctx(t), "a", now, now.Add(time.Minute), 10))
	key := func(ds []parley.WebhookDelivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, fmt.Sprintf("%d:%d", d.Shard, d.Pos))
		}
		slices.Sort(out)
		return out
	}
	// c3's 2 waits for its 1; c0's 4 and c3b's 4 are two deliveries.
	if k := key(got); !slices.Equal(k, []string{"0:4", "3:1", "3:4"}) {
		t.Fatalf("claimed %v, want [0:4 3:1 3:4]", k)
	}
	if err := q.FinishWebhook(ctx(t), "a", 3, 4); err != nil {
		t.Fatal(err)
	}
	if err := q.FinishWebhook(ctx(t), "a", 3, 1); err != nil {
		t.Fatal(err)
	}
	if err := q.RetryWebhook(ctx(t), "a", 0, 4, now); err != nil {
		t.Fatal(err)
	}
	got = must[[]parley.WebhookDelivery](t, "ClaimWebhooks")(q.ClaimWebhooks(ctx(t), "a", now, now.Add(time.Minute), 10))
	if k := key(got); !slices.Equal(k, []string{"0:4", "3:2"}) {
		t.Fatalf("claimed %v after finishing 3:1 and 3:4, want [0:4 3:2] (shard 0's 4 kept)", k)
	}
}

func positions(ds []parley.WebhookDelivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Pos)
	}
	return out
}

// testAPIKeys: keys are found by hash, listed, revoked once; bans.
func testAPIKeys(t *testing.T, s parley.Store) {
	ks, ok := s.(parley.APIKeyStore)
	if !ok {
		t.Fatalf("%T does not implement parley.APIKeyStore", s)
	}
	k := parley.APIKey{ID: "k1", Name: "backend", Scopes: []string{"users", "tokens"}, CreatedAt: parley.Now().Truncate(time.Millisecond)}
	if err := ks.CreateAPIKey(ctx(t), k, []byte("hash1")); err != nil {
		t.Fatalf("CreateAPIKey: %v", err)
	}
	wantCode(t, "CreateAPIKey without scopes", ks.CreateAPIKey(ctx(t), parley.APIKey{ID: "k2"}, []byte("h")), parley.EINVALID)
	got := must[parley.APIKey](t, "APIKeyByHash")(ks.APIKeyByHash(ctx(t), []byte("hash1")))
	if got.ID != "k1" || got.Name != "backend" || !slices.Equal(got.Scopes, k.Scopes) || !got.CreatedAt.Equal(k.CreatedAt) || got.RevokedAt != nil {
		t.Fatalf("APIKeyByHash = %+v, want %+v", got, k)
	}
	_, err := ks.APIKeyByHash(ctx(t), []byte("nope"))
	wantCode(t, "APIKeyByHash of an unknown hash", err, parley.ENOTFOUND)
	wantCode(t, "RevokeAPIKey of an unknown key", ks.RevokeAPIKey(ctx(t), "nope"), parley.ENOTFOUND)
	if err := ks.RevokeAPIKey(ctx(t), "k1"); err != nil {
		t.Fatal(err)
	}
	got = must[parley.APIKey](t, "APIKeyByHash")(ks.APIKeyByHash(ctx(t), []byte("hash1")))
	if got.RevokedAt == nil {
		t.Fatal("revoked key has no RevokedAt")
	}
	first := *got.RevokedAt
	if err := ks.RevokeAPIKey(ctx(t), "k1"); err != nil {
		t.Fatal(err)
	}
	if list := must[[]parley.APIKey](t, "APIKeys")(ks.APIKeys(ctx(t))); len(list) != 1 || list[0].RevokedAt == nil || !list[0].RevokedAt.Equal(first) {
		t.Fatalf("APIKeys after a second revoke = %+v, want one key revoked at %v", list, first)
	}

	u := newUser(t, s, "banned")
	wantCode(t, "BanUser of no such user", ks.BanUser(ctx(t), "nobody"), parley.ENOTFOUND)
	for range 2 {
		if err := ks.BanUser(ctx(t), u.ID); err != nil {
			t.Fatalf("BanUser: %v", err)
		}
	}
	if ids := must[[]string](t, "BannedUsers")(ks.BannedUsers(ctx(t))); !slices.Equal(ids, []string{u.ID}) {
		t.Fatalf("BannedUsers = %v, want [%s]", ids, u.ID)
	}
}

// testModerateMessage: any message can be tombstoned, once, with the
// usual messageDeleted event to the members.
func testModerateMessage(t *testing.T, s parley.Store) {
	ks := s.(parley.APIKeyStore)
	a, b := newUser(t, s, "mod-a"), newUser(t, s, "mod-b")
	c := newGroup(t, s, a, "moderated", b)
	m := send(t, s, c.ID, a, "spam")
	_, _, err := ks.ModerateMessage(ctx(t), c.ID, "no-such-message")
	wantCode(t, "ModerateMessage of no such message", err, parley.ENOTFOUND)
	_, _, err = ks.ModerateMessage(ctx(t), "no-such-conversation", m.ID)
	wantCode(t, "ModerateMessage in the wrong conversation", err, parley.ENOTFOUND)
	got, evs, err := ks.ModerateMessage(ctx(t), c.ID, m.ID)
	if err != nil || !got.Deleted || got.Text != "" {
		t.Fatalf("ModerateMessage = %+v, %v", got, err)
	}
	if len(evs) != 1 || evs[0].Type != parley.EventMessageDeleted || evs[0].UserID != a.ID || !slices.Equal(sorted(evs[0].Audience), sorted([]string{a.ID, b.ID})) {
		t.Fatalf("events = %+v", evs)
	}
	if _, evs, err := ks.ModerateMessage(ctx(t), c.ID, m.ID); err != nil || len(evs) != 0 {
		t.Fatalf("ModerateMessage again = %v events, %v; want none", len(evs), err)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// testMessagesBySender: a user's messages, every conversation, paged by
// client id, nobody else's.
func testMessagesBySender(t *testing.T, s parley.Store) {
	ks := s.(parley.APIKeyStore)
	a, b := newUser(t, s, "bys-a"), newUser(t, s, "bys-b")
	g1, g2 := newGroup(t, s, a, "one", b), newGroup(t, s, b, "two", a)
	var want []string
	for i, c := range []string{g1.ID, g2.ID, g1.ID} {
		m := must[parley.Message](t, "SendMessage")(func() (parley.Message, error) {
			m, _, err := s.SendMessage(ctx(t), parley.NewMessage{ConversationID: c, SenderID: a.ID, ClientID: "k" + string(rune('0'+i)), Type: parley.Text, Text: "x"})
			return m, err
		}())
		want = append(want, m.ID)
	}
	send(t, s, g1.ID, b, "not a's")
	_, err := ks.MessagesBySender(ctx(t), a.ID, "", 0)
	wantCode(t, "MessagesBySender with limit 0", err, parley.EINVALID)
	var got []string
	after := ""
	for {
		page := must[[]parley.Message](t, "MessagesBySender")(ks.MessagesBySender(ctx(t), a.ID, after, 2))
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if m.SenderID != a.ID {
				t.Fatalf("page holds %+v", m)
			}
			got = append(got, m.ID)
		}
		after = page[len(page)-1].ClientID
	}
	if !slices.Equal(got, want) {
		t.Fatalf("MessagesBySender pages = %v, want %v", got, want)
	}
}

// testEraseProgress: an erasure's progress (its message cursor and its
// place in the conversations) is kept for a banned user only, and reads
// back as written.
func testEraseProgress(t *testing.T, s parley.Store) {
	ks := s.(parley.APIKeyStore)
	a := newUser(t, s, "erase-a")
	progress := func(id string) [2]string {
		after, convs, err := ks.EraseProgress(ctx(t), id)
		if err != nil {
			t.Fatalf("EraseProgress: %v", err)
		}
		return [2]string{after, convs}
	}
	if err := ks.SetEraseProgress(ctx(t), a.ID, "k1", "c1"); err != nil {
		t.Fatal(err)
	}
	if p := progress(a.ID); p != [2]string{} {
		t.Fatalf("progress of a user not banned = %q, want none", p)
	}
	if err := ks.BanUser(ctx(t), a.ID); err != nil {
		t.Fatal(err)
	}
	if p := progress(a.ID); p != [2]string{} {
		t.Fatalf("progress after the ban = %q, want none", p)
	}
	for _, want := range [][2]string{{"k1", ""}, {"k2", "+123:conv-9"}, {"k2", ""}, {"", "-1:c"}, {"", ""}} {
		if err := ks.SetEraseProgress(ctx(t), a.ID, want[0], want[1]); err != nil {
			t.Fatal(err)
		}
		if p := progress(a.ID); p != want {
			t.Fatalf("progress = %q, want %q", p, want)
		}
	}
	if p := progress("nobody"); p != [2]string{} {
		t.Fatalf("progress of nobody = %q", p)
	}
}
