package postgres

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/parleychat/parley"
)

// TestIndexStepReadsEventsOnce: an index step reads each of its events
// once. Its unindexing statement (qUnindex) reads the step's edits and
// deletes alone, in their partial index (migration 00021), where it read
// every event of the step a first time in events_pkey, fetching each row
// to test its type; and its reading of the texts to index (qIndexTexts,
// qIndex's SELECT before their words were split in Go) no longer sorts
// or hashes the ids (no DISTINCT: m.id = ANY matches a row once). Both
// plans are the generic ones a step's connection keeps (plan_cache_mode),
// under the step's settings (qStepSettings). The edited and deleted
// messages are still unindexed and indexed again.
func TestIndexStepReadsEventsOnce(t *testing.T) {
	db := openBulk(t)
	db.ix.manual.Store(true)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 2)
	var (
		sent []string
		err  error
	)
	for i := range 60 {
		m, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: g.ID, SenderID: ids[i%2], ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: fmt.Sprint("word", i)})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, m.ID)
	}
	// Indexed: search_docs has rows for the unindexing to look up.
	for more := true; more; {
		if more, err = db.ix.step(ctx, 0, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := db.EditMessage(ctx, parley.MessageEdit{UserID: ids[0], ConversationID: g.ID, MessageID: sent[0], ClientID: "e1", Text: "edited"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.DeleteMessage(ctx, ids[1], g.ID, sent[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	var head int64
	if err := db.pool.QueryRow(ctx, `SELECT head FROM positions WHERE shard = 0`).Scan(&head); err != nil {
		t.Fatal(err)
	}

	tx, err := db.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, qStepSettings+`, set_config('plan_cache_mode', 'force_generic_plan', true)`, "10000"); err != nil {
		t.Fatal(err)
	}
	explain := func(q string) []byte {
		t.Helper()
		var plan []byte
		if err := tx.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q, 0, 0, head).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		return plan
	}
	if n := rowsRead(t, explain(qUnindex), "events"); n != 2 {
		t.Errorf("unindexing the %d events of a step read %v rows of events: want 2 (its edit and its delete)", head, n)
	}
	var plan []string
	rows, err := tx.Query(ctx, "EXPLAIN "+qIndexTexts, 0, 0, head)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, line := range plan {
		for _, node := range []string{"Unique", "Aggregate", "Sort"} {
			if strings.Contains(line, node) {
				t.Errorf("the indexing statement's plan holds %s: %s", node, strings.Join(plan, "\n"))
			}
		}
	}
}
