package postgres_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

func TestReplanSchedule(t *testing.T) {
	var due []int64
	for n := int64(1); n <= 3*16384; n++ {
		if postgres.ReplanDue(n) {
			due = append(due, n)
		}
	}
	want := []int64{16, 64, 256, 1024, 4096, 16384, 2 * 16384, 3 * 16384}
	if fmt.Sprint(due) != fmt.Sprint(want) {
		t.Errorf("plans dropped at batches %v, want %v", due, want)
	}
}

// sendPlanScans explains, in tx, the generic plans its connection keeps
// for the send path's statements, and returns the lines that scan a
// table the sends look up by key, and how many statements it explained.
func sendPlanScans(ctx context.Context, tx pgx.Tx) (scans []string, explained int, err error) {
	plans, err := preparedPlans(ctx, tx, `statement = ANY($1)`, postgres.SendStatements)
	if err != nil {
		return nil, 0, err
	}
	scans = planLines(plans, "Seq Scan on conversations ", "Seq Scan on members ", "Seq Scan on messages ", "Seq Scan on users ")
	return scans, len(plans), nil
}

// TestSendPlansFollowGrowth: a batch connection whose send statements
// were planned on tables of a few rows (generic plans, kept) plans them
// again once the tables have grown (batch.go, replanDue), so a send
// reads conversations, members, messages and users by key however small
// they were at its connection's first batches. Without the replan, the
// plans made on the first batch (sequential scans) stay.
func TestSendPlansFollowGrowth(t *testing.T) {
	dsn := pgtest.Schema(t) + "&plan_cache_mode=force_generic_plan"
	db := open(t, dsn)
	postgres.ManualIndex(db)
	type check struct {
		batches int64
		scans   []string
		stmts   int
		err     error
	}
	checks := make(chan check, 1024)
	postgres.InBatch(db, func(ctx context.Context, tx pgx.Tx, batches int64) {
		scans, n, err := sendPlanScans(ctx, tx)
		select {
		case checks <- check{batches, scans, n, err}:
		default:
		}
	})
	u := mustUser(t, db, "grower")
	g := mustGroup(t, db, u.ID, "growing")
	seq := 0
	send := func() {
		t.Helper()
		var nms []parley.NewMessage
		for range 3 {
			seq++
			nms = append(nms, parley.NewMessage{ConversationID: g.ID, SenderID: u.ID, ClientID: fmt.Sprintf("c%d", seq), Type: parley.Text, Text: "hi"})
		}
		// A bulk batch (two sends) and a lone send.
		errs := make([]error, len(nms))
		db.SendMessages(t.Context(), nms[:2], func(i int, _ parley.Message, _ []parley.Event, err error) { errs[i] = err })
		_, _, errs[2] = db.SendMessage(t.Context(), nms[2])
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	drain := func() (last []check) {
		for {
			select {
			case c := <-checks:
				last = append(last, c)
			default:
				return last
			}
		}
	}
	for range 4 {
		send()
	}
	var stale []string
	for _, c := range drain() {
		stale = append(stale, c.scans...)
	}
	if len(stale) == 0 {
		t.Fatal("the send statements planned on tables of a few rows scan none of them: the test shows nothing")
	}

	// The tables grow, as a database does while its nodes run.
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, q := range []string{
		`INSERT INTO users (id, name, created_at) SELECT 'u' || i, 'user' || i, now() FROM generate_series(1, 30000) i`,
		`INSERT INTO conversations (id, kind, title, created_by, created_at, last_activity_at) SELECT 'c' || i, 'group', 't', 'u' || i, now(), now() FROM generate_series(1, 30000) i`,
		`INSERT INTO members (conversation_id, user_id, joined_pos) SELECT 'c' || i, 'u' || i, 0 FROM generate_series(1, 30000) i`,
		`INSERT INTO messages (id, conversation_id, seq, sender_id, client_id, type, text, created_at) SELECT 'm' || i, 'c' || i, 1, 'u' || i, 'x' || i, 'text', 'hi', now() FROM generate_series(1, 30000) i`,
	} {
		if _, err := conn.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	// Every batch connection has run fewer than 16 batches: past 64, it
	// has planned the send statements again since the tables grew.
	checked := 0
	for range 200 {
		send()
		for _, c := range drain() {
			if c.err != nil {
				t.Fatal(c.err)
			}
			if c.batches < 64 || c.stmts == 0 {
				continue
			}
			checked++
			if len(c.scans) > 0 {
				t.Fatalf("batch %d of its connection, after the tables grew: the send plans scan %v", c.batches, c.scans)
			}
		}
		if checked >= 10 {
			break
		}
	}
	if checked == 0 {
		t.Fatal("no batch connection ran 64 batches")
	}
}
