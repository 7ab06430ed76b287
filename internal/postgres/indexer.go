package postgres

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/parleychat/parley"
)

// The search indexer (migration 00015).
//
// search_docs, the words of every searchable message, is written after
// commit, in transactions of its own, so a send's transaction neither
// tokenises its text nor updates a GIN index. Per shard, search_cursor.pos
// says how far the shard's events are applied: a step takes the cursor
// row's lock (FOR UPDATE), applies the message events (newMessage,
// messageEdited, messageDeleted) in (pos, to] by upserting the words of
// each named message as it is now, or deleting its row when it is
// deleted, and moves pos to `to` in the same transaction. A shard's
// events become visible in position order (its advisory lock), so what
// lies above pos is exactly what waits; a step rolled back (its node died
// mid-batch: PostgreSQL ends the session, idle_in_transaction_session_
// timeout bounds a stalled one) leaves pos where it was, and the next
// step, on any node, applies the same events again.
//
// Nodes: after each commit its batcher kicks its node's indexer, which
// steps every lagging shard indexDelay later (gathering many batches
// into one step). Steps of the same shard on several nodes take turns on
// the cursor row; a node that finds it locked skips the shard (SKIP
// LOCKED: the holder is indexing it) and looks again indexDelay later.
// A search needs none of this to be exact (see DB.searchFrom): it matches
// the messages of the events above the cursors on their text. It only
// bounds that tail: when more than searchTail events wait, the search
// steps first, waiting for a node that holds a cursor.

const (
	// indexDelay is how long the indexer gathers commits before a step,
	// and how soon it looks again at a shard that another node held or
	// that has more than indexChunk events waiting.
	indexDelay = 100 * time.Millisecond
	// indexChunk bounds the events of one step, so the cursor row is
	// never held for long.
	indexChunk = 5000
	// indexStepBytes bounds the words a step holds in memory (its
	// messages' index texts, about their texts' size): a step whose
	// words would pass it is tried again over a quarter of its events
	// (step). Chat-sized texts never reach it (5000 of 100 bytes are
	// 0.5 MB); 5000 texts of parley.MaxTextRunes one-letter words would
	// hold 50 MB.
	indexStepBytes = 4 << 20
	// minStepEvents and maxIndexWait: a pass after commits steps a shard
	// once this many of its events wait, or once it has lagged this long
	// (as this node saw it). A step costs PostgreSQL a transaction and
	// seven statements in three round trips whatever it applies (six in
	// two before its words were split in Go, migration 00026), and on a
	// log of many shards each pass found a few dozen events per shard: on
	// 16 shards the indexer's steps made most of PostgreSQL's CPU per message (h-shardcost,
	// docs/benchmarks.md "Write scaling cost per message"). Searches stay
	// exact: they match the waiting events on their text.
	minStepEvents = 256
	maxIndexWait  = time.Second
	// searchTail bounds the events a search matches unindexed: beyond
	// it the search has them indexed first.
	searchTail = 5000
	// catchUpSteps bounds the steps one search takes.
	catchUpSteps = 8
	// indexStepWait bounds one step from BEGIN to COMMIT (and the read
	// of the lag before a pass).
	indexStepWait = 10 * time.Second
)

const (
	// qSearchLag lists the shards whose events are not all applied, with
	// how many wait.
	qSearchLag = `SELECT p.shard, p.head - COALESCE(c.pos, 0) FROM positions p
		LEFT JOIN search_cursor c ON c.shard = p.shard
		WHERE p.head > COALESCE(c.pos, 0)`
	// qSearchCursors gives every shard its cursor row (a new log's shards,
	// sqlstore.SetupShards): from 0, its events are all to apply.
	qSearchCursors = `INSERT INTO search_cursor (shard, pos)
		SELECT p.shard, 0 FROM positions p WHERE NOT EXISTS (SELECT 1 FROM search_cursor c WHERE c.shard = p.shard)
		ON CONFLICT DO NOTHING`
	qMissingCursors = `SELECT EXISTS (SELECT 1 FROM positions p WHERE NOT EXISTS (SELECT 1 FROM search_cursor c WHERE c.shard = p.shard))`
	// qLockCursor takes a shard's cursor and reads its head (args: shard).
	qLockCursor = `SELECT c.pos, p.head FROM search_cursor c JOIN positions p ON p.shard = c.shard
		WHERE c.shard = $1 FOR UPDATE OF c`
	// searchEvents are the message ids of the events of the given types
	// to apply (args: shard, after, to), as an array the statements look
	// up in messages' primary key: a join could be planned (pgx prepares
	// the statement, whose generic plan knows no range) as a scan of
	// every message. The array may name a message twice (a message sent
	// and edited in one step): m.id = ANY matches each row once (the
	// btree sorts the array and drops repeats), so no DISTINCT, which
	// sorted or hashed every id of the step once more before it.
	// qUnindex reads the edits and deletes alone through their partial
	// index (events_message_changes, migration 00021), not every event
	// of the step.
	searchEvents = `m.id = ANY (ARRAY(SELECT e.message_id FROM events e
		WHERE e.shard = $1 AND e.pos > $2 AND e.pos <= $3 AND e.message_id IS NOT NULL
			AND e.type IN (`
	// qUnindex deletes the rows of the messages edited or deleted, and
	// qIndex inserts the words of the messages as they are now (a
	// message edited has its row written again). qIndex is a plain
	// INSERT: an upsert (ON CONFLICT) costs PostgreSQL a speculative
	// insertion per row, a lookup of the key before the insert and a
	// confirmation record in the WAL, ~2 µs of ~14 per row
	// (docs/benchmarks.md, "PostgreSQL cost per message (2026-12-06,
	// h-pgwrite)"), for a conflict that does not happen: no other step
	// applies the shard's events meanwhile (the cursor's lock), and a
	// step rolled back leaves no rows. A row can be there only when it
	// was written outside the indexer (migration 00015 copies the rows of
	// the messages of the time, and a message committed meanwhile is also
	// above the cursor; a bulk load); the unique violation then rolls the
	// step back and step runs it again with qUnindexUpsert and
	// qIndexUpsert, as before.
	qUnindex = `DELETE FROM search_docs d USING messages m
		WHERE ` + searchEvents + `'messageEdited', 'messageDeleted')))
			AND d.search_key = m.search_key`
	// qIndexTexts reads the texts of the messages to index as they are
	// now; qIndex inserts their words, split in Go (searchDocs, an array
	// per column: one statement for the whole step). A step holds its
	// messages' words in memory at once: at most indexChunk of them, and
	// at most indexStepBytes (step).
	qIndexTexts = `SELECT m.search_key, m.id, m.conversation_id, m.text FROM messages m
		WHERE ` + searchEvents + `'newMessage', 'messageEdited', 'messageDeleted')))
			AND m.deleted_at IS NULL AND m.text != ''`
	qIndex = `INSERT INTO search_docs (search_key, message_id, conversation_id, words)
		SELECT u.k, u.id, u.c, ` + searchDocWords + `
		FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u (k, id, c, w)`
	// qUnindexUpsert deletes the rows of messages deleted (or edited to
	// no text): only an edit or a delete can make them so; qIndexUpsert
	// writes the words of the messages as they are now, over a row
	// already there.
	qUnindexUpsert = `DELETE FROM search_docs d USING messages m
		WHERE ` + searchEvents + `'messageEdited', 'messageDeleted')))
			AND d.search_key = m.search_key AND (m.deleted_at IS NOT NULL OR m.text = '')`
	qIndexUpsert = qIndex + `
		ON CONFLICT (search_key) DO UPDATE SET words = EXCLUDED.words`
	qMoveCursor = `UPDATE search_cursor SET pos = $2 WHERE shard = $1`
	// qStepSettings is a step's first statement: its idle bound ($1), and
	// no sequential scans. pgx prepares each statement once per
	// connection, and PostgreSQL keeps a generic plan of it from its sixth
	// execution on, planned for the tables as they were then: on a new
	// database (no statistics before autovacuum's first ANALYZE) a
	// connection whose steps began while messages held a few rows kept a
	// sequential scan of messages testing every row against the step's
	// ids (m.id = ANY), for every later step on a table of any size. On
	// 16 shards, whose steps start early, that was most of PostgreSQL's
	// CPU (docs/benchmarks.md, "PostgreSQL CPU per message on 16 shards").
	// With sequential scans off, every plan of a step looks up by key.
	qStepSettings = `SELECT set_config('idle_in_transaction_session_timeout', $1, true), set_config('enable_seqscan', 'off', true)`
)

// searchDocWords is a search_docs row's words from its index text (w:
// parley.SearchIndexText, keys joined by single spaces): each key a
// lexeme as it is, never parsed again by PostgreSQL's text search parser
// (migration 00026).
const searchDocWords = `array_to_tsvector(string_to_array(u.w, ' '))`

// searchDocs are the search_docs rows of an index step, a slice per
// column (qIndex's arrays), words split in Go.
type searchDocs struct {
	keys       []int64
	ids, convs []string
	words      []string
	bytes      int // of words
}

// scan reads qIndexTexts' rows.
func (d *searchDocs) scan(rows pgx.Rows) error {
	var (
		key            int64
		id, conv, text string
	)
	_, err := pgx.ForEachRow(rows, []any{&key, &id, &conv, &text}, func() error {
		w := parley.SearchIndexText(text)
		if d.bytes += len(w); d.bytes > indexStepBytes && len(d.keys) > 0 {
			return errStepBytes
		}
		d.keys, d.ids, d.convs = append(d.keys, key), append(d.ids, id), append(d.convs, conv)
		d.words = append(d.words, w)
		return nil
	})
	return err
}

// indexer is a node's search indexer. Open starts its goroutine and
// DB.Close stops it (close), after the batcher, so the last commits are
// indexed; kick and catchUp are safe for concurrent use.
type indexer struct {
	pool *pgxpool.Pool
	// kicks wakes the goroutine after a commit (capacity 1: kicks while
	// one waits are one).
	kicks chan struct{}
	stop  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	// holdIdle is the batcher's: how long a step may sit idle holding a
	// cursor before PostgreSQL ends its session.
	holdIdle time.Duration
	// tail is searchTail (tests lower it).
	tail int64
	// Tests only (export_search_test.go): with manual the goroutine steps
	// only at close, so the tail stays for searches to match; beforeCommit
	// runs in a step, with its transaction, before its COMMIT.
	manual       atomic.Bool
	beforeCommit func(ctx context.Context, tx pgx.Tx)

	// since holds, for each shard a pass left waiting (fewer than
	// minStepEvents), when a pass first saw it lagging.
	sinceMu sync.Mutex
	since   map[int]time.Time
	// maxWait is maxIndexWait (tests change it).
	maxWait time.Duration
}

// newIndexer makes the indexer of pool; start runs it.
func newIndexer(pool *pgxpool.Pool, holdIdle time.Duration) *indexer {
	return &indexer{pool: pool, kicks: make(chan struct{}, 1), stop: make(chan struct{}), holdIdle: holdIdle, tail: searchTail,
		since: map[int]time.Time{}, maxWait: maxIndexWait}
}

// setup gives every shard a cursor row (a store opened read-only with
// every row in place writes nothing).
func setupSearchCursors(ctx context.Context, pool *pgxpool.Pool) error {
	var missing bool
	if err := pool.QueryRow(ctx, qMissingCursors).Scan(&missing); err != nil || !missing {
		return err
	}
	if _, err := pool.Exec(ctx, qSearchCursors); err != nil {
		return err
	}
	// As migration 00015 does: searches plan with the cursor count.
	_, err := pool.Exec(ctx, `ANALYZE search_cursor`)
	return err
}

// start runs the goroutine, which looks at once for events a previous
// run left (a node that died, a store written by an older version).
func (ix *indexer) start() {
	ix.kick()
	ix.wg.Add(1)
	go ix.loop() // owned by ix: close stops and waits for it
}

// kick tells the indexer that a batch committed.
func (ix *indexer) kick() {
	select {
	case ix.kicks <- struct{}{}:
	default:
	}
}

// close stops the goroutine after a last pass over the waiting events
// (bounded by indexStepWait; what is left, the next step of any node
// applies). It is safe to call more than once.
func (ix *indexer) close() {
	ix.once.Do(func() { close(ix.stop) })
	ix.wg.Wait()
}

func (ix *indexer) loop() {
	defer ix.wg.Done()
	t := time.NewTimer(indexDelay)
	t.Stop()
	armed := false
	for {
		select {
		case <-ix.stop:
			ctx, cancel := context.WithTimeout(context.Background(), indexStepWait)
			ix.pass(ctx, true)
			cancel()
			return
		case <-ix.kicks:
			if !armed && !ix.manual.Load() {
				t.Reset(indexDelay)
				armed = true
			}
		case <-t.C:
			armed = false
			if !ix.manual.Load() && ix.pass(context.Background(), false) {
				t.Reset(indexDelay)
				armed = true
			}
		}
	}
}

// pass steps every lagging shard once; again says some still lag (more
// than a chunk waited, another node held a cursor, a step failed, or a
// shard was left to gather more events). wait makes it wait for cursors
// other nodes hold, and step every lagging shard however few wait (at
// close); without it, a shard is stepped only once minStepEvents wait or
// it has lagged maxIndexWait.
func (ix *indexer) pass(ctx context.Context, wait bool) (again bool) {
	lctx, cancel := context.WithTimeout(ctx, indexStepWait)
	lag, err := ix.lag(lctx)
	cancel()
	if err != nil {
		return true
	}
	for shard, n := range lag {
		if !wait && !ix.due(shard, n) {
			again = true
			continue
		}
		more, err := ix.step(ctx, shard, wait)
		again = again || more || err != nil
	}
	ix.sinceMu.Lock()
	for shard := range ix.since {
		if _, ok := lag[shard]; !ok { // indexed meanwhile (by another node)
			delete(ix.since, shard)
		}
	}
	ix.sinceMu.Unlock()
	return again
}

// due says whether a pass should step shard, n of whose events wait.
func (ix *indexer) due(shard int, n int64) bool {
	ix.sinceMu.Lock()
	defer ix.sinceMu.Unlock()
	first, seen := ix.since[shard]
	switch {
	case n >= minStepEvents, seen && time.Since(first) >= ix.maxWait:
		delete(ix.since, shard)
		return true
	case !seen:
		ix.since[shard] = time.Now()
	}
	return false
}

// lag reads how many events wait, per lagging shard.
func (ix *indexer) lag(ctx context.Context) (map[int]int64, error) {
	rows, err := ix.pool.Query(ctx, qSearchLag)
	if err != nil {
		return nil, err
	}
	lag := map[int]int64{}
	var (
		shard int
		n     int64
	)
	_, err = pgx.ForEachRow(rows, []any{&shard, &n}, func() error {
		lag[shard] = n
		return nil
	})
	return lag, err
}

// errCursorHeld is step's answer when another node holds the cursor and
// wait is not set.
var errCursorHeld = errors.New("postgres: another node indexes this shard")

// step applies up to indexChunk of shard's waiting events in a
// transaction of its own; more says events still wait. Without wait, a
// cursor another node holds is skipped (more is set).
func (ix *indexer) step(ctx context.Context, shard int, wait bool) (more bool, err error) {
	upsert, events := false, int64(indexChunk)
	for {
		more, err = ix.stepWith(ctx, shard, wait, upsert, events)
		switch {
		case errors.Is(err, errStepBytes) && events > 1:
			// Large texts: fewer of them (one message's words fit).
			events = max(1, events/4)
		case isUniqueViolation(err) && !upsert:
			// A row written outside the indexer (see qIndex): again, over it.
			upsert = true
		default:
			return more, err
		}
	}
}

// errStepBytes is stepWith's answer when its messages' words would hold
// more than indexStepBytes.
var errStepBytes = errors.New("postgres: an index step's words pass its byte bound")

// stepWith is step over at most events events, writing the rows with
// qIndex, or with qIndexUpsert over the rows already there when upsert
// is set.
func (ix *indexer) stepWith(ctx context.Context, shard int, wait, upsert bool, events int64) (more bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, indexStepWait)
	defer cancel()
	tx, err := ix.pool.Begin(ctx)
	if err != nil {
		return true, err
	}
	defer tx.Rollback(context.Background()) // after Commit, a no-op
	lock := qLockCursor
	if !wait {
		lock += ` SKIP LOCKED`
	}
	b := &pgx.Batch{}
	b.Queue(qStepSettings, millis(ix.holdIdle))
	b.Queue(lock, shard)
	br := tx.SendBatch(ctx, b)
	var pos, head int64
	_, err = br.Exec()
	if err == nil {
		err = br.QueryRow().Scan(&pos, &head)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return true, errCursorHeld
	case err != nil:
		return true, err
	}
	to := min(head, pos+events)
	if to <= pos {
		return false, nil
	}
	unindex, index := qUnindex, qIndex
	if upsert {
		unindex, index = qUnindexUpsert, qIndexUpsert
	}
	b = &pgx.Batch{}
	b.Queue(unindex, shard, pos, to)
	var docs searchDocs
	b.Queue(qIndexTexts, shard, pos, to).Query(docs.scan)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return true, err
	}
	b = &pgx.Batch{}
	if len(docs.keys) > 0 {
		b.Queue(index, docs.keys, docs.ids, docs.convs, docs.words)
	}
	b.Queue(qMoveCursor, shard, to)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return true, err
	}
	if ix.beforeCommit != nil {
		ix.beforeCommit(ctx, tx)
	}
	if err := tx.Commit(ctx); err != nil {
		return true, err
	}
	return to < head, nil
}

// catchUp steps the shards, waiting for cursors other nodes hold, until
// at most searchTail events wait in all (or ctx ends, or a step fails,
// or it took catchUpSteps steps: writes faster than it indexes leave the
// rest to the search, which is exact still, only slower): a search
// matches those on their text.
func (ix *indexer) catchUp(ctx context.Context) error {
	for range catchUpSteps {
		lag, err := ix.lag(ctx)
		if err != nil {
			return err
		}
		var total, most int64
		shard := -1
		for s, n := range lag {
			total += n
			if n > most {
				shard, most = s, n
			}
		}
		if total <= ix.tail {
			return nil
		}
		if _, err := ix.step(ctx, shard, true); err != nil {
			return err
		}
	}
	return nil
}
