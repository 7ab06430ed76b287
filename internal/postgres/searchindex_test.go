package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
)

// openIndexNodes opens n stores (nodes) on one fresh schema with shards
// shards, their indexers manual (postgres.ManualIndex): the searches
// below see the tail unless a test indexes.
func openIndexNodes(t *testing.T, n, shards int) []*postgres.DB {
	dbs := openNodes(t, pgtest.Schema(t), n, shards)
	for _, db := range dbs {
		postgres.ManualIndex(db)
	}
	return dbs
}

// searchIDs searches for word as user on db and returns the results' ids
// (one page of 50).
func searchIDs(t *testing.T, db *postgres.DB, user, word string) []string {
	t.Helper()
	p, err := db.Search(t.Context(), user, parley.SearchQuery{Terms: []string{word}, Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, r := range p.Results {
		ids = append(ids, r.Message.ID)
	}
	return ids
}

// indexAll indexes every waiting event with db's indexer.
func indexAll(t *testing.T, db *postgres.DB, shards int) {
	t.Helper()
	for s := range shards {
		for more := true; more; {
			var err error
			if more, err = postgres.IndexStep(t.Context(), db, s); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// docCount is the rows of search_docs in db's schema.
func docCount(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM search_docs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestSearchAcrossNodes: three nodes share one PostgreSQL whose search
// index is written after commit. A message acknowledged on node A is
// found by a search on node B at once (the tail), and still after all
// three nodes index at the same time (each event applied once: the
// rows and the cursors end exact). An edit on B hides the indexed text
// from a search on C at once, and a delete on C hides the message from A,
// before and after indexing. A non-member finds nothing.
func TestSearchAcrossNodes(t *testing.T) {
	const shards = 4
	dbs := openIndexNodes(t, 3, shards)
	a, b, c := dbs[0], dbs[1], dbs[2]
	ctx := t.Context()
	alice := mustUser(t, a, "alice")
	outsider := mustUser(t, b, "outsider")
	var sent []string
	for g := range 6 {
		conv := mustGroup(t, a, alice.ID, fmt.Sprint("g", g))
		for i := range 5 {
			m, _, err := dbs[i%3].SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: alice.ID,
				ClientID: fmt.Sprint("c", g, "-", i), Type: parley.Text, Text: fmt.Sprint("alpha word", g, i)})
			if err != nil {
				t.Fatal(err)
			}
			sent = append(sent, m.ID)
			// Acknowledged on one node, found on the next at once.
			if got := searchIDs(t, dbs[(i+1)%3], alice.ID, "alpha"); !slices.Contains(got, m.ID) {
				t.Fatalf("message %s acked on node %d: not found on node %d (%d results)", m.ID, i%3, (i+1)%3, len(got))
			}
		}
	}
	if lag, err := postgres.SearchLag(ctx, a); err != nil || lag == 0 {
		t.Fatalf("lag %d, %v: want the messages waiting (the indexers are manual)", lag, err)
	}
	slices.Reverse(sent) // newest first, as results are
	check := func(when string, want []string) {
		t.Helper()
		for i, db := range dbs {
			if got := searchIDs(t, db, alice.ID, "alpha"); !slices.Equal(got, want) {
				t.Errorf("%s, node %d: %d results %v, want %d", when, i, len(got), got, len(want))
			}
			if got := searchIDs(t, db, outsider.ID, "alpha"); len(got) != 0 {
				t.Errorf("%s, node %d: a non-member finds %v", when, i, got)
			}
		}
	}
	check("unindexed", sent)

	// All three index at once.
	var wg sync.WaitGroup
	for _, db := range dbs {
		wg.Go(func() {
			for s := range shards {
				for more := true; more; {
					var err error
					if more, err = postgres.IndexStep(ctx, db, s); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if lag, err := postgres.SearchLag(ctx, c); err != nil || lag != 0 {
		t.Fatalf("after indexing on three nodes: lag %d, %v", lag, err)
	}
	if n := docCount(t, postgres.DSN(a)); n != len(sent) {
		t.Errorf("search_docs holds %d rows, want %d", n, len(sent))
	}
	check("indexed", sent)

	// An edit and a delete of indexed messages, seen at once elsewhere.
	conv := mustMessage(t, a, alice.ID, sent[0]).ConversationID
	if _, _, err := b.EditMessage(ctx, parley.MessageEdit{UserID: alice.ID, ConversationID: conv, MessageID: sent[0],
		ClientID: "e1", Text: "gamma now"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.DeleteMessage(ctx, alice.ID, mustMessage(t, a, alice.ID, sent[1]).ConversationID, sent[1]); err != nil {
		t.Fatal(err)
	}
	check("edited and deleted, unindexed", sent[2:])
	if got := searchIDs(t, c, alice.ID, "gamma"); !slices.Equal(got, sent[:1]) {
		t.Errorf("gamma: %v, want %v", got, sent[:1])
	}
	indexAll(t, a, shards)
	check("edited and deleted, indexed", sent[2:])
	if got := searchIDs(t, b, alice.ID, "gamma"); !slices.Equal(got, sent[:1]) {
		t.Errorf("gamma, indexed: %v, want %v", got, sent[:1])
	}
	if n := docCount(t, postgres.DSN(a)); n != len(sent)-1 {
		t.Errorf("search_docs holds %d rows, want %d (the deleted one gone)", n, len(sent)-1)
	}
}

// TestSearchIndexNodeDies: a node that dies in the middle of an index
// step (its session ends before COMMIT) leaves nothing half done: while
// it holds the shard's cursor, another node's pass skips the shard and
// a search there is still exact; once it is gone, the other node indexes
// every event, once.
func TestSearchIndexNodeDies(t *testing.T) {
	dbs := openIndexNodes(t, 2, 1)
	dying, live := dbs[0], dbs[1]
	ctx := t.Context()
	u, want := sendWords(t, live, "delta", 20)
	held, release := make(chan uint32), make(chan struct{})
	postgres.BeforeIndexCommit(dying, func(pid uint32) {
		held <- pid
		<-release
	})
	stepErr := make(chan error, 1)
	go func() {
		_, err := postgres.IndexStep(context.Background(), dying, 0)
		stepErr <- err
	}()
	pid := <-held
	if !postgres.IndexPass(ctx, live) {
		t.Error("a pass while another node holds the cursor reports nothing left to do")
	}
	if got := searchIDs(t, live, u.ID, "delta"); !slices.Equal(got, want) {
		t.Errorf("while a step is under way elsewhere: %v, want %v", got, want)
	}
	// The node dies: PostgreSQL ends its session, rolling the step back.
	conn, err := pgx.Connect(ctx, postgres.DSN(live))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	close(release)
	if err := <-stepErr; err == nil {
		t.Fatal("the dying node's step committed")
	}
	if lag, err := postgres.SearchLag(ctx, live); err != nil || lag == 0 {
		t.Fatalf("lag %d, %v: want the dead step's events waiting", lag, err)
	}
	indexAll(t, live, 1)
	if lag, err := postgres.SearchLag(ctx, live); err != nil || lag != 0 {
		t.Fatalf("lag %d, %v after the live node indexed", lag, err)
	}
	if n := docCount(t, postgres.DSN(live)); n != len(want) {
		t.Errorf("search_docs holds %d rows, want %d", n, len(want))
	}
	if got := searchIDs(t, live, u.ID, "delta"); !slices.Equal(got, want) {
		t.Errorf("indexed: %v, want %v", got, want)
	}
}

// TestSearchTailBound: a search that finds more events waiting than its
// bound has them indexed first, and answers the same.
func TestSearchTailBound(t *testing.T) {
	db := openIndexNodes(t, 1, 2)[0]
	postgres.SetSearchTail(db, 5)
	ctx := t.Context()
	u, want := sendWords(t, db, "epsilon", 30)
	if lag, err := postgres.SearchLag(ctx, db); err != nil || lag < 30 {
		t.Fatalf("lag %d, %v before the search", lag, err)
	}
	if got := searchIDs(t, db, u.ID, "epsilon"); !slices.Equal(got, want) {
		t.Errorf("%v, want %v", got, want)
	}
	if lag, err := postgres.SearchLag(ctx, db); err != nil || lag > 5 {
		t.Errorf("lag %d, %v after the search: want at most the bound, 5", lag, err)
	}
}

// sendWords makes a user and a group of theirs on db and sends n
// messages holding word there; it returns the user and the messages'
// ids, newest first (the order of search results).
func sendWords(t *testing.T, db *postgres.DB, word string, n int) (parley.User, []string) {
	t.Helper()
	u := mustUser(t, db, "user1")
	conv := mustGroup(t, db, u.ID, "g")
	var ids []string
	for i := range n {
		m, _, err := db.SendMessage(t.Context(), parley.NewMessage{ConversationID: conv.ID, SenderID: u.ID,
			ClientID: fmt.Sprint("c", i), Type: parley.Text, Text: fmt.Sprint(word, " ", i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append([]string{m.ID}, ids...)
	}
	return u, ids
}

// mustMessage reads one message as user.
func mustMessage(t *testing.T, db *postgres.DB, user, id string) parley.Message {
	t.Helper()
	convs, err := db.Conversations(t.Context(), user)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range convs {
		p, err := db.Messages(t.Context(), user, c.ID, parley.MessageQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range p.Messages {
			if m.ID == id {
				return m
			}
		}
	}
	t.Fatalf("no message %s", id)
	return parley.Message{}
}

// TestIndexPassGathers: a pass after commits leaves a shard with few
// events waiting until more gather (MinStepEvents) or it has waited long
// enough, so a log of many shards is not indexed a few events per
// transaction; searches find the waiting messages all along.
func TestIndexPassGathers(t *testing.T) {
	db := openIndexNodes(t, 1, 1)[0]
	ctx := t.Context()
	postgres.SetIndexWait(db, time.Hour)
	u, want := sendWords(t, db, "zeta", 10)
	if !postgres.IndexPass(ctx, db) {
		t.Error("a pass that left events waiting reports nothing left to do")
	}
	if lag, err := postgres.SearchLag(ctx, db); err != nil || lag == 0 {
		t.Fatalf("lag %d, %v: want the few events left to gather", lag, err)
	}
	if got := searchIDs(t, db, u.ID, "zeta"); !slices.Equal(got, want) {
		t.Errorf("while they wait: %v, want %v", got, want)
	}
	postgres.SetIndexWait(db, 0)
	postgres.IndexPass(ctx, db)
	if lag, err := postgres.SearchLag(ctx, db); err != nil || lag != 0 {
		t.Fatalf("lag %d, %v after they waited long enough", lag, err)
	}

	postgres.SetIndexWait(db, time.Hour)
	conv := mustGroup(t, db, u.ID, "g2")
	for i := range postgres.MinStepEvents {
		if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: conv.ID, SenderID: u.ID,
			ClientID: fmt.Sprint("eta", i), Type: parley.Text, Text: fmt.Sprint("eta ", i)}); err != nil {
			t.Fatal(err)
		}
	}
	postgres.IndexPass(ctx, db)
	if lag, err := postgres.SearchLag(ctx, db); err != nil || lag != 0 {
		t.Fatalf("lag %d, %v after a pass over %d waiting messages", lag, err, postgres.MinStepEvents)
	}
	if n := docCount(t, postgres.DSN(db)); n != len(want)+postgres.MinStepEvents {
		t.Errorf("search_docs holds %d rows, want %d", n, len(want)+postgres.MinStepEvents)
	}
}

// preparedPlans explains, in tx, the plans its connection keeps for its
// prepared statements that match where (a condition on
// pg_prepared_statements, with args), run with NULL arguments: the
// generic plans under plan_cache_mode=force_generic_plan. It returns each
// statement's plan by name.
func preparedPlans(ctx context.Context, tx pgx.Tx, where string, args ...any) (map[string][]string, error) {
	rows, err := tx.Query(ctx, `SELECT name, COALESCE(array_length(parameter_types, 1), 0) FROM pg_prepared_statements WHERE `+where, args...)
	if err != nil {
		return nil, err
	}
	type stmt struct {
		Name string
		Args int
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[stmt])
	if err != nil {
		return nil, err
	}
	plans := map[string][]string{}
	for _, s := range stmts {
		explain := "EXPLAIN EXECUTE " + pgx.Identifier{s.Name}.Sanitize()
		if s.Args > 0 {
			explain += "(" + strings.TrimSuffix(strings.Repeat("NULL, ", s.Args), ", ") + ")"
		}
		rows, err := tx.Query(ctx, explain)
		if err != nil {
			return nil, err
		}
		if plans[s.Name], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return nil, err
		}
	}
	return plans, nil
}

// planLines returns the lines of plans (by statement name) that hold
// any of parts, each after its statement's name.
func planLines(plans map[string][]string, parts ...string) []string {
	var found []string
	for name, plan := range plans {
		for _, line := range plan {
			for _, part := range parts {
				if strings.Contains(line, part) {
					found = append(found, name+": "+strings.TrimSpace(line))
				}
			}
		}
	}
	return found
}

// TestIndexStepLooksUpByKey: an index step reads messages, events and
// search_docs by key whatever plan its connection keeps. Here every
// statement runs a generic plan made at its first execution
// (plan_cache_mode), for tables of a few rows without statistics: the
// plan a new database's connections keep from their sixth step on. Such
// a plan scanned messages, testing every row against the step's ids, in
// every later step however large the table grew. The plans checked are
// the ones the step ran: its connection's prepared statements, explained
// in its transaction. A step also writes its rows with a plain INSERT,
// not an upsert (ON CONFLICT: a speculative insertion per row, a lookup
// of the key first and a confirmation in the WAL), for rows that cannot
// be there (indexer.go, qIndex).
func TestIndexStepLooksUpByKey(t *testing.T) {
	db := open(t, pgtest.Schema(t)+"&plan_cache_mode=force_generic_plan")
	postgres.ManualIndex(db)
	var scans []string
	steps := 0
	postgres.InIndexStep(db, func(ctx context.Context, tx pgx.Tx) {
		steps++
		plans, err := preparedPlans(ctx, tx, `statement ~ 'search_docs|search_cursor'`)
		if err != nil || len(plans) < 3 {
			t.Errorf("the step's prepared statements: %v, %v", plans, err)
			return
		}
		scans = append(scans, planLines(plans, "Seq Scan on messages ", "Seq Scan on events ", "Seq Scan on search_docs ",
			"Conflict Resolution")...)
	})
	u, want := sendWords(t, db, "theta", 10)
	indexAll(t, db, 1)
	if steps == 0 || len(scans) > 0 {
		t.Errorf("%d index steps; their plans scan or upsert: %v", steps, scans)
	}
	if got := searchIDs(t, db, u.ID, "theta"); !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if n := docCount(t, postgres.DSN(db)); n != len(want) {
		t.Errorf("search_docs holds %d rows, want %d", n, len(want))
	}
}

// TestIndexStepOverExistingRows: a row already in search_docs for a
// message whose event waits (written outside the indexer: migration
// 00015's copy of the rows while messages were sent) does not stop the
// indexer: the step runs again as an upsert, every waiting event is
// applied, and the row holds the message's words.
func TestIndexStepOverExistingRows(t *testing.T) {
	db := open(t, pgtest.Schema(t))
	postgres.ManualIndex(db)
	u, want := sendWords(t, db, "lambda", 6)
	conn, err := pgx.Connect(t.Context(), postgres.DSN(db))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(t.Context(), `INSERT INTO search_docs (search_key, message_id, conversation_id, words)
		SELECT search_key, id, conversation_id, to_tsvector('simple', 'stale') FROM messages WHERE id = $1`, want[2]); err != nil {
		t.Fatal(err)
	}
	indexAll(t, db, 1)
	if lag, err := postgres.SearchLag(t.Context(), db); err != nil || lag != 0 {
		t.Fatalf("%d events wait after indexing (%v), want 0", lag, err)
	}
	if got := searchIDs(t, db, u.ID, "lambda"); !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	if got := searchIDs(t, db, u.ID, "stale"); len(got) > 0 {
		t.Errorf("found %v by the row's old words, want none", got)
	}
	if n := docCount(t, postgres.DSN(db)); n != len(want) {
		t.Errorf("search_docs holds %d rows, want %d", n, len(want))
	}
}
