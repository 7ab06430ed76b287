package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/parleychat/parley"
)

// planNode is a node of an EXPLAIN (ANALYZE[, BUFFERS], FORMAT JSON) plan.
type planNode struct {
	Relation string     `json:"Relation Name"`
	Rows     float64    `json:"Actual Rows"`
	Loops    float64    `json:"Actual Loops"`
	Removed  float64    `json:"Rows Removed by Filter"`
	Hit      float64    `json:"Shared Hit Blocks"`
	Read     float64    `json:"Shared Read Blocks"`
	Plans    []planNode `json:"Plans"`
}

// planSum sums f over the nodes of plan that read the table rel.
func planSum(t *testing.T, plan []byte, rel string, f func(planNode) float64) float64 {
	t.Helper()
	var top []struct{ Plan planNode }
	if err := json.Unmarshal(plan, &top); err != nil || len(top) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	var sum func(n planNode) float64
	sum = func(n planNode) float64 {
		s := 0.0
		if n.Relation == rel {
			s = f(n)
		}
		for _, c := range n.Plans {
			s += sum(c)
		}
		return s
	}
	return sum(top[0].Plan)
}

// rowsRead sums, over the nodes of an EXPLAIN (ANALYZE, FORMAT JSON)
// plan that read the table rel, the rows they read: those they returned
// and those their filter dropped, times their loops.
func rowsRead(t *testing.T, plan []byte, rel string) float64 {
	t.Helper()
	return planSum(t, plan, rel, func(n planNode) float64 { return (n.Rows + n.Removed) * n.Loops })
}

// blocksRead sums the shared buffers (hit and read) of the nodes of an
// EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) plan that scan the table rel.
func blocksRead(t *testing.T, plan []byte, rel string) float64 {
	t.Helper()
	return planSum(t, plan, rel, func(n planNode) float64 { return n.Hit + n.Read })
}

// explainAnalyze runs q with args under EXPLAIN (ANALYZE, FORMAT JSON).
func explainAnalyze(t *testing.T, db *DB, q string, args ...any) []byte {
	t.Helper()
	var plan []byte
	if err := db.pool.QueryRow(t.Context(), "EXPLAIN (ANALYZE, FORMAT JSON) "+q, args...).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	return plan
}

// TestSendCheckReadsNoGroup: the send check of a group reads the
// sender's membership alone, not the group's every member (the refusal
// rule, SendRefusedSQL, is for direct conversations). Before, each send
// in a group of 40 read its 40 members: 1,600 rows for 40 sends. A direct
// conversation's refusals still hold.
func TestSendCheckReadsNoGroup(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 40)
	explain := func(q string, args ...any) float64 {
		t.Helper()
		return rowsRead(t, explainAnalyze(t, db, q, args...), "members")
	}
	if n := explain(qSendCheck, g.ID, ids[1], "c1", ""); n > 2 {
		t.Errorf("one send's check read %v rows of members: want at most 2 (the sender's)", n)
	}
	convs, clients, atts := make([]string, len(ids)), make([]string, len(ids)), make([]string, len(ids))
	for i := range ids {
		convs[i], clients[i] = g.ID, fmt.Sprint("c", i)
	}
	if n := explain(qBulkSendCheck, convs, ids, clients, atts); n > float64(2*len(ids)) {
		t.Errorf("the check of %d sends read %v rows of members: want at most %d (each sender's)", len(ids), n, 2*len(ids))
	}

	// In a direct conversation a block still refuses the blocked's sends.
	d, _, err := db.CreateDirect(ctx, ids[0], ids[1])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Block(ctx, ids[1], ids[0]); err != nil {
		t.Fatal(err)
	}
	_, _, err = db.SendMessage(ctx, parley.NewMessage{ConversationID: d.ID, SenderID: ids[0], ClientID: "d1", Type: parley.Text, Text: "hi"})
	if !errors.Is(err, parley.ErrUnreachable) {
		t.Errorf("a send to a user who blocked the sender: %v, want %v", err, parley.ErrUnreachable)
	}
	if _, _, err := db.SendMessage(ctx, parley.NewMessage{ConversationID: g.ID, SenderID: ids[0], ClientID: "g1", Type: parley.Text, Text: "hi"}); err != nil {
		t.Errorf("a send in a group with a block among its members: %v", err)
	}
}

// TestSendCheckPerPair: the check of a batch reads what depends on the
// conversation and the sender once per pair, not once per send: 40 sends
// of 4 senders in one group read the conversation 4 times (40 before).
func TestSendCheckPerPair(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 4)
	var convs, senders, clients, atts []string
	for i := range 40 {
		convs, senders = append(convs, g.ID), append(senders, ids[i%len(ids)])
		clients, atts = append(clients, fmt.Sprint("c", i)), append(atts, "")
	}
	if n := rowsRead(t, explainAnalyze(t, db, qBulkSendCheck, convs, senders, clients, atts), "conversations"); n != float64(len(ids)) {
		t.Errorf("the check of 40 sends of %d senders in one conversation read it %v times: want %d", len(ids), n, len(ids))
	}
	// And the answers are each send's: every sender a member, in order.
	rows, err := db.pool.Query(ctx, qBulkSendCheck, convs, senders, clients, atts)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		if vals[0] != true || vals[3] != nil {
			t.Errorf("send %d: member %v, earlier message %v: want true, none", i, vals[0], vals[3])
		}
	}
	if err := rows.Err(); err != nil || i != len(convs) {
		t.Errorf("%d rows (%v) for %d sends", i, err, len(convs))
	}
}

// analyzedGroup creates n users and a group of them all (the first its
// owner) and analyzes the database: with statistics, as a database that
// has run for a while, since without them the planner may read a table
// this small whole.
func analyzedGroup(t *testing.T, db *DB, n int) (ids []string, g parley.Conversation) {
	t.Helper()
	ctx := t.Context()
	for i := range n {
		u, err := db.CreateUser(ctx, fmt.Sprint("user", i), nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
	}
	g, _, err := db.CreateGroup(ctx, ids[0], "room", ids[1:])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	return ids, g
}

// TestSendCheckNoAttachmentLookup: the check of a send without an
// attachment reads no page of attachments (before, each text send's empty
// id was looked up in an index of attachments: a descent per message, 2
// buffers on the load of `parley bench write`), and an image send still
// finds the sender's attachment.
func TestSendCheckNoAttachmentLookup(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	ids, g := analyzedGroup(t, db, 4)
	for i, id := range ids { // attachments has pages to read
		if err := db.PutAttachment(ctx, id, parley.Attachment{ID: fmt.Sprint("pic", i), ContentType: "image/png", Width: 1, Height: 1}, []byte("png"), nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.pool.Exec(ctx, "ANALYZE attachments"); err != nil {
		t.Fatal(err)
	}
	explain := func(q string, args ...any) []byte {
		t.Helper()
		var plan []byte
		if err := db.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "+q, args...).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		return plan
	}
	if n := blocksRead(t, explain(qSendCheck, g.ID, ids[1], "c1", ""), "attachments"); n != 0 {
		t.Errorf("one text send's check read %v pages of attachments: want 0", n)
	}
	var convs, senders, clients, atts []string
	for i := range 40 {
		convs, senders = append(convs, g.ID), append(senders, ids[i%len(ids)])
		clients, atts = append(clients, fmt.Sprint("c", i)), append(atts, "")
	}
	if n := blocksRead(t, explain(qBulkSendCheck, convs, senders, clients, atts), "attachments"); n != 0 {
		t.Errorf("the check of 40 text sends read %v pages of attachments: want 0", n)
	}
	// An image send's check still finds the sender's own attachment
	// (column 5: owned), and not another user's.
	atts[0], atts[1] = "pic0", "pic0" // senders ids[0] (its owner), ids[1]
	rows, err := db.pool.Query(ctx, qBulkSendCheck, convs, senders, clients, atts)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var owned []bool
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		owned = append(owned, vals[5].(bool))
	}
	if err := rows.Err(); err != nil || len(owned) != 40 || !owned[0] || owned[1] || owned[2] {
		t.Errorf("owned %v (%v): want the first send's attachment alone owned", owned, err)
	}
}
