package postgres_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// scanned matches a plan line that reads a table of the write path
// whole.
var scanned = regexp.MustCompile(`Seq Scan on (messages|events|search_docs|members|conversations)\b`)

// explainPrepared explains, in tx, the generic plans its connection keeps
// for its prepared statements that match where (a condition on
// pg_prepared_statements, with args), and returns how many it explained
// and their plan lines that scan a table of the write path whole.
func explainPrepared(ctx context.Context, tx pgx.Tx, where string, args ...any) (int, []string, error) {
	rows, err := tx.Query(ctx, `SELECT name, COALESCE(array_length(parameter_types, 1), 0) FROM pg_prepared_statements
		WHERE `+where, args...)
	if err != nil {
		return 0, nil, err
	}
	type stmt struct {
		Name string
		Args int
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[stmt])
	if err != nil {
		return 0, nil, err
	}
	var scans []string
	for _, s := range stmts {
		explain := "EXPLAIN EXECUTE " + pgx.Identifier{s.Name}.Sanitize()
		if s.Args > 0 {
			// Any arguments do: a generic plan does not depend on them.
			explain += "(" + strings.TrimSuffix(strings.Repeat("NULL, ", s.Args), ", ") + ")"
		}
		rows, err := tx.Query(ctx, explain)
		if err != nil {
			return 0, nil, err
		}
		plan, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return 0, nil, err
		}
		for _, line := range plan {
			if scanned.MatchString(line) {
				scans = append(scans, strings.TrimSpace(line))
			}
		}
	}
	return len(stmts), scans, nil
}

// TestSendPlansLookUpByKey: the sends' statements read messages, members,
// conversations and events by key whatever a connection keeps. Here
// every prepared statement runs a generic plan made at its first
// execution (plan_cache_mode), for tables of a few rows without
// statistics: the plan a new database's connections keep from their sixth
// batch on, whose first sends met a nearly empty messages table. Such
// plans read tables whole for every later batch. The one-send statements'
// kept plans must look up by key (checked: their connection's prepared
// statements, explained in a later batch's transaction); the bulk ones
// must not be kept at all (they are planned per batch, with its arrays).
func TestSendPlansLookUpByKey(t *testing.T) {
	db := open(t, pgtest.Schema(t)+"&plan_cache_mode=force_generic_plan")
	ctx := t.Context()
	var (
		mu              sync.Mutex
		explained, bulk int
		scans           []string
	)
	postgres.AfterBatchLock(db, func(ctx context.Context, tx pgx.Tx) {
		n, s, err := explainPrepared(ctx, tx, `statement = ANY ($1)`, postgres.OneSendStatements)
		var kept int
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements WHERE statement = ANY ($1)`,
				postgres.BulkSendStatements).Scan(&kept)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Error(err)
		}
		explained, bulk = max(explained, n), max(bulk, kept)
		scans = append(scans, s...)
	})
	u := mustUser(t, db, "alice")
	conv := mustGroup(t, db, u.ID, "g")
	// A send alone (the one-send statements), then runs of sends that
	// share a batch (the bulk ones), twice each: the second batch finds
	// the first's plans.
	for round := range 2 {
		if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: u.ID,
			ClientID: fmt.Sprint("one", round), Type: parley.Text, Text: "one"}); err != nil {
			t.Fatal(err)
		}
		nms := make([]parley.NewMessage, 5)
		for i := range nms {
			nms[i] = parley.NewMessage{ConversationID: conv.ID, SenderID: u.ID,
				ClientID: fmt.Sprint("run", round, "-", i), Type: parley.Text, Text: "run"}
		}
		db.SendMessages(ctx, nms, func(i int, _ parley.Message, _ []parley.Event, err error) {
			if err != nil {
				t.Error(i, err)
			}
		})
	}
	// One more batch, to explain what the last ones kept.
	mustGroup(t, db, u.ID, "g2")
	mu.Lock()
	defer mu.Unlock()
	if explained < 2 || len(scans) > 0 {
		t.Errorf("%d of the one-send statements explained; their plans scan: %v", explained, scans)
	}
	if bulk > 0 {
		t.Errorf("%d bulk send statements prepared, whose plans a connection keeps", bulk)
	}
}
