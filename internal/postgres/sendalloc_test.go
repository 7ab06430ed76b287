package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/sqlstore"
)

// TestSendAllocations: a send's op is one allocation (newSendOp), and the
// batch's check costs one allocation per send (its sender's name) on top
// of what its statement costs whatever the batch's size (sendChecks: each
// row scanned in place; an empty list of who blocked the sender is NULL,
// not an array to decode). Before, three and three.
func TestSendAllocations(t *testing.T) {
	nm := parley.NewMessage{ConversationID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", SenderID: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
		ClientID: "c1", Type: parley.Text, Text: "hi"}
	a := testing.AllocsPerRun(100, func() { newSendOp(nm, 16) })
	t.Logf("newSendOp: %v allocations", a)
	if a > 1 {
		t.Errorf("newSendOp: %v allocations, want 1", a)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn := pgtest.Schema(t)
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A user and their group: the check finds the sender a member, with
	// a name to scan.
	u, err := db.CreateUser(ctx, "alloc", nil)
	var c parley.Conversation
	if err == nil {
		c, _, err = db.CreateGroup(ctx, u.ID, "g", nil)
	}
	var tx pgx.Tx
	if err == nil {
		tx, err = db.pool.Begin(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	w := &writeTx{tx: tx, ctx: ctx, shards: 1}
	sends := func(n int) []*sendOp {
		ss := make([]*sendOp, n)
		for i := range ss {
			ss[i] = &sendOp{nm: parley.NewMessage{ConversationID: c.ID, SenderID: u.ID, ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: "hi"}}
		}
		return ss
	}
	allocs := func(ss []*sendOp) float64 {
		return testing.AllocsPerRun(10, func() {
			checks, err := sendChecks(w, ss)
			if err != nil || len(checks) != len(ss) || !checks[0].member || checks[0].name != "alloc" || checks[0].hidden != nil {
				t.Fatalf("checks of %d sends: %d, first %+v, %v", len(ss), len(checks), checks[0], err)
			}
		})
	}
	small, large := allocs(sends(100)), allocs(sends(600))
	t.Logf("send check: %v allocations for 100 sends, %v for 600", small, large)
	if perSend := (large - small) / 500; perSend > 1.5 {
		t.Errorf("the send check: %.2f allocations per send (%v for 100 sends, %v for 600), want at most 1.5", perSend, small, large)
	}
}

// TestSendWriteAllocs: the bulk write's audiences cost, per
// conversation of the batch, the members array and its ids, and nothing
// more for a conversation with one send (scanAudiences: the conversation
// id matched from the row's raw bytes, the array scanned into place and
// handed to the conversation's first send), and a send's event is in its
// sendOp. Before, four allocations a send more here: the id's string, two
// copies of the array, and the event's own slice.
func TestSendWriteAllocs(t *testing.T) {
	if raceEnabled {
		// scripts/test runs it again without -race.
		t.Skip("the race detector drops pgx's pooled buffers at random")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	db, err := Open(ctx, pgtest.Schema(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	u, err := db.CreateUser(ctx, "alloc", nil)
	if err != nil {
		t.Fatal(err)
	}
	// One group a send: each conversation of the batch has one send and
	// one member.
	const most = 240
	convs := make([]string, most)
	for i := range convs {
		c, _, err := db.CreateGroup(ctx, u.ID, fmt.Sprint("g", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		convs[i] = c.ID
	}
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	allocs := func(n int) float64 {
		ss := make([]*sendOp, n)
		return testing.AllocsPerRun(5, func() {
			for i := range ss {
				ss[i] = &sendOp{nm: parley.NewMessage{ConversationID: convs[i], SenderID: u.ID, ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: "hi"}}
			}
			w := &writeTx{tx: tx, ctx: ctx, shards: 1, pos: sqlstore.NewHeads([]int64{1 << 40})}
			if _, err := tx.Exec(ctx, "SAVEPOINT a"); err != nil {
				t.Fatal(err)
			}
			if err := bulkSend(w, ss); err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT a"); err != nil {
				t.Fatal(err)
			}
			for _, so := range ss {
				if so.err != nil || len(so.events) != 1 || len(so.events[0].Audience) != 1 || so.events[0].Audience[0] != u.ID {
					t.Fatalf("send: %v, events %+v", so.err, so.events)
				}
			}
		})
	}
	small, large := allocs(40), allocs(most)
	perSend := (large - small) / (most - 40)
	t.Logf("bulk send: %v allocations for 40 sends in as many conversations, %v for %d: %.2f a send", small, large, most, perSend)
	// Measured: 13.2 a send before, 10.2 with scanAudiences, 9.2 with the
	// event in the sendOp.
	if perSend > 9.7 {
		t.Errorf("bulk send: %.2f allocations a send (%v for 40, %v for %d), want at most 9.7", perSend, small, large, most)
	}
}
