package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// rowBlocks maps each row of the query's (key, ctid) to the page (heap
// block) its current version is on.
func rowBlocks(t *testing.T, conn *pgx.Conn, q string) map[string]int64 {
	t.Helper()
	rows, err := conn.Query(t.Context(), `SELECT key, (ctid::text::point)[0]::bigint FROM (`+q+`) r`)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]int64{}
	var (
		key   string
		block int64
	)
	if _, err := pgx.ForEachRow(rows, []any{&key, &block}, func() error {
		blocks[key] = block
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// TestSendUpdatesStayOnPage: the rows a send updates (its conversation's,
// its sender's membership) get their new version on the same page (a HOT
// update, no index entry), even while another session's snapshot keeps
// the old versions from being pruned (migration 00019: pages keep room).
// At the default fillfactor the pages are full and the new versions move
// to other pages.
func TestSendUpdatesStayOnPage(t *testing.T) {
	dsn := pgtest.Schema(t)
	db := open(t, dsn)
	const n = 150 // several pages of each table
	var convs []parley.Conversation
	var users []parley.User
	for i := range n {
		u := mustUser(t, db, fmt.Sprintf("hot%d", i))
		users = append(users, u)
		convs = append(convs, mustGroup(t, db, u.ID, "room"))
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	const (
		qConvs   = `SELECT id AS key, ctid FROM conversations`
		qMembers = `SELECT conversation_id || '/' || user_id AS key, ctid FROM members WHERE left_pos IS NULL`
	)
	convBefore, memberBefore := rowBlocks(t, conn, qConvs), rowBlocks(t, conn, qMembers)
	if len(convBefore) != n || len(memberBefore) != n {
		t.Fatalf("%d conversations and %d members, want %d each", len(convBefore), len(memberBefore), n)
	}

	// A snapshot that still sees every row as it is now: no version dead
	// from here on can be pruned while it is open.
	hold, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close(context.Background())
	tx, err := hold.BeginTx(t.Context(), pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	var seen int
	if err := tx.QueryRow(t.Context(), `SELECT count(*) FROM conversations`).Scan(&seen); err != nil || seen != n {
		t.Fatalf("the held snapshot sees %d conversations (%v), want %d", seen, err, n)
	}

	for i, c := range convs {
		if _, _, err := db.SendMessage(t.Context(), parley.NewMessage{ConversationID: c.ID, SenderID: users[i].ID,
			ClientID: fmt.Sprintf("hot-%d", i), Type: parley.Text, Text: "hello"}); err != nil {
			t.Fatal(err)
		}
	}
	moved := func(before, after map[string]int64) (m int) {
		for k, b := range before {
			if a, ok := after[k]; !ok || a != b {
				m++
			}
		}
		return m
	}
	convAfter, memberAfter := rowBlocks(t, conn, qConvs), rowBlocks(t, conn, qMembers)
	var last int64
	if err := conn.QueryRow(t.Context(), `SELECT min(last_seq) FROM conversations`).Scan(&last); err != nil || last != 1 {
		t.Fatalf("the conversations' lowest last_seq is %d (%v), want 1: every send stored", last, err)
	}
	if m := moved(convBefore, convAfter); m > 0 {
		t.Errorf("%d of %d conversations moved to another page when a send updated them", m, n)
	}
	if m := moved(memberBefore, memberAfter); m > 0 {
		t.Errorf("%d of %d senders' members rows moved to another page when their send updated them", m, n)
	}
}
