package postgres

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/parleychat/parley"
)

// membersRead sums, over the nodes of an EXPLAIN (ANALYZE, FORMAT JSON)
// plan that read the members table, the rows they read: those they
// returned and those their filter dropped, times their loops.
func membersRead(t *testing.T, plan []byte) float64 {
	t.Helper()
	type node struct {
		Relation string  `json:"Relation Name"`
		Rows     float64 `json:"Actual Rows"`
		Loops    float64 `json:"Actual Loops"`
		Removed  float64 `json:"Rows Removed by Filter"`
		Plans    []node  `json:"Plans"`
	}
	var top []struct{ Plan node }
	if err := json.Unmarshal(plan, &top); err != nil || len(top) != 1 {
		t.Fatalf("plan %s: %v", plan, err)
	}
	var sum func(n node) float64
	sum = func(n node) float64 {
		s := 0.0
		if n.Relation == "members" {
			s = (n.Rows + n.Removed) * n.Loops
		}
		for _, c := range n.Plans {
			s += sum(c)
		}
		return s
	}
	return sum(top[0].Plan)
}

// TestSendCheckReadsNoGroup: the send check of a group reads the
// sender's membership alone, not the group's every member (the refusal
// rule, SendRefusedSQL, is for direct conversations). Before, each send
// in a group of 40 read its 40 members: 1,600 rows for 40 sends. A direct
// conversation's refusals still hold.
func TestSendCheckReadsNoGroup(t *testing.T) {
	db := openBulk(t)
	ctx := t.Context()
	var ids []string
	for i := range 40 {
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
	// With statistics, as a database that has run for a while: without,
	// the planner may read a table this small whole.
	if _, err := db.pool.Exec(ctx, "ANALYZE"); err != nil {
		t.Fatal(err)
	}
	explain := func(q string, args ...any) float64 {
		t.Helper()
		var plan []byte
		if err := db.pool.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+q, args...).Scan(&plan); err != nil {
			t.Fatal(err)
		}
		return membersRead(t, plan)
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
