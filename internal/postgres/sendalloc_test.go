package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
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
