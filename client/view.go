package client

import (
	"context"
	"slices"
	"sort"
	"sync"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// ConversationView is the history of one conversation as an app shows it:
// the newest page first, older pages with LoadMore, and live events (new
// messages, deletes, edits and reactions, the quotes of replies following
// their parent's edit or delete) applied as they come, so the app never sees a message
// twice or a gap between a loaded page and live events. Messages are
// ordered by Seq and hold every message this user may see from the oldest
// loaded to the newest; the seqs they skip are messages this user may not
// see (a blocked user's, or sent while they were not a member).
//
// Live events need no fetch: the client's event stream holds every event
// this user may see, once and in order (docs/protocol.md, resume), and a
// resync, which breaks that, reloads the view. So a live message past the
// newest loaded one is placed after it, whatever seqs lie between.
//
// Messages this client is still sending are not in the view until the
// server stores them; show Client.Pending() below the view for those.
// Methods are safe for concurrent use; the OnChange callback runs on the
// client's callback goroutine.
type ConversationView struct {
	c        *Client
	id       string
	pageSize int

	mu       sync.Mutex
	msgs     []parley.Message
	hasMore  bool
	older    int64   // with hasMore, LoadMore's cursor: the server's next
	syncing  bool    // a reload is under way; live events wait in buf
	buf      []Event // live events that came during a reload
	needSync bool    // a resync was seen during a reload: reload again
	// loadingMore counts the LoadMore calls under way. Meanwhile an
	// edit, deletion or reaction of a message older than the loaded ones
	// (which changes nothing loaded) is kept in olderEvs (olderBytes of
	// them, estimated) and applied again once a page is merged: the page
	// may have been read before it. Past maxOlderBytes they are dropped,
	// and olderLost reloads the view once the last LoadMore ends.
	loadingMore int
	olderEvs    []Event
	olderBytes  int
	olderLost   bool
	onChange    func()
	closed      bool
	err         error // the last background fetch error
}

// OpenConversation loads the newest page of a conversation (pageSize
// messages; 0 means parley.DefaultPageLimit) and keeps the view up to date
// until Close. It waits for a connection.
func (c *Client) OpenConversation(ctx context.Context, conversationID string, pageSize int) (*ConversationView, error) {
	if pageSize <= 0 {
		pageSize = parley.DefaultPageLimit
	}
	if pageSize > parley.MaxPageLimit {
		pageSize = parley.MaxPageLimit
	}
	v := &ConversationView{c: c, id: conversationID, pageSize: pageSize, syncing: true}
	// Register before fetching, so every event committed after the page was
	// read reaches the buffer.
	s := c.state
	s.mu.Lock()
	s.views[conversationID] = append(s.views[conversationID], v)
	s.mu.Unlock()
	var page parley.MessagePage
	err := c.call(ctx, protocol.OpHistory, protocol.History{ConversationID: conversationID, Limit: pageSize}, &page, true)
	if err != nil {
		v.Close()
		return nil, err
	}
	v.mu.Lock()
	v.msgs, v.hasMore, v.older = page.Messages, page.HasMore, olderCursor(page)
	v.mu.Unlock()
	v.finishSync()
	return v, nil
}

// olderCursor is the before cursor of the page older than p: the
// server's next, or p's oldest message from a server that sends no next.
func olderCursor(p parley.MessagePage) int64 {
	if p.Next == 0 && len(p.Messages) > 0 {
		return p.Messages[0].Seq
	}
	return p.Next
}

// ID is the conversation's id.
func (v *ConversationView) ID() string { return v.id }

// Messages returns the loaded messages in Seq order (a copy).
func (v *ConversationView) Messages() []parley.Message {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]parley.Message(nil), v.msgs...)
}

// Removed reports whether this user was removed from the conversation or
// left it (see Client.IsRemoved). The view's OnChange runs when that
// event arrives; an app shows a notice and stops offering to send.
func (v *ConversationView) Removed() bool { return v.c.IsRemoved(v.id) }

// HasMore reports whether older messages may remain to load.
func (v *ConversationView) HasMore() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.hasMore
}

// Err returns the error of the last background reload (after a resync),
// nil when it succeeded. A view whose reload failed is empty and reloads
// on the next event.
func (v *ConversationView) Err() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.err
}

// OnChange sets a function called (on the callback goroutine) after the
// view changed. It replaces the previous one; nil removes it.
func (v *ConversationView) OnChange(fn func()) {
	v.mu.Lock()
	v.onChange = fn
	v.mu.Unlock()
}

// LoadMore loads the page of messages before the oldest loaded one and
// returns how many it added. A page is asked for by Seq (a cursor: the
// server's next), so new messages arriving meanwhile cannot shift it. It
// may add none while HasMore stays true: the server reads a bounded
// window a page (parley.HistoryWindow), and a run of messages of a user
// this user blocked fills it; call it again.
func (v *ConversationView) LoadMore(ctx context.Context) (int, error) {
	v.mu.Lock()
	if !v.hasMore || v.older == 0 {
		v.mu.Unlock()
		return 0, nil
	}
	before := v.older
	v.loadingMore++
	v.mu.Unlock()
	var page parley.MessagePage
	err := v.c.call(ctx, protocol.OpHistory, protocol.History{ConversationID: v.id, Before: protocol.Cursor(before), Limit: v.pageSize}, &page, true)
	v.mu.Lock()
	n := 0
	if err == nil && v.hasMore && v.older == before { // no refetch or other LoadMore meanwhile
		var older []parley.Message
		for _, m := range page.Messages {
			if len(v.msgs) == 0 || m.Seq < v.msgs[0].Seq {
				older = append(older, m)
			}
		}
		n = len(older)
		v.msgs = append(older, v.msgs...)
		v.hasMore, v.older = page.HasMore, olderCursor(page)
		if v.older >= before { // a page that moves back nowhere ends the paging
			v.hasMore, v.older = false, 0
		}
		// Changes to these messages that came while the page was on
		// its way: the page may predate them. Each event is a state (a
		// text, a tombstone, a count), so applying one again to a page
		// that has it changes nothing.
		for _, ev := range v.olderEvs {
			v.applyLocked(ev)
		}
	}
	v.loadingMore--
	if v.loadingMore == 0 {
		v.olderEvs, v.olderBytes = nil, 0
		if v.olderLost && !v.closed && !v.syncing {
			v.olderLost = false
			v.startSyncLocked()
		}
	}
	v.mu.Unlock()
	if err != nil {
		return 0, err
	}
	v.changed()
	return n, nil
}

// maxOlderBytes bounds ConversationView.olderEvs, in estimated bytes: a
// LoadMore is one request, bounded by its context, during which a few
// changes to older messages come at most; a flood of them costs a
// reload, not memory.
const maxOlderBytes = 1 << 20

// keepOlderLocked keeps ev for the LoadMore calls under way when it
// changes a message older than the loaded ones (see olderEvs).
func (v *ConversationView) keepOlderLocked(ev Event) {
	if v.loadingMore == 0 {
		return
	}
	var seq int64
	size := 256 // the event's fixed fields
	switch e := ev.(type) {
	case MessageDeleted:
		seq, size = e.Message.Seq, size+len(e.Message.Text)
	case MessageEdited:
		seq, size = e.Message.Seq, size+len(e.Message.Text)
	case ReactionAdded:
		seq, size = e.Seq, size+len(e.Emoji)+len(e.UserName)
	case ReactionRemoved:
		seq, size = e.Seq, size+len(e.Emoji)+len(e.UserName)
	default:
		return
	}
	if len(v.msgs) > 0 && seq >= v.msgs[0].Seq {
		return
	}
	if v.olderBytes+size > maxOlderBytes {
		v.olderLost = true
		return
	}
	v.olderEvs = append(v.olderEvs, ev)
	v.olderBytes += size
}

// Close stops updating the view.
func (v *ConversationView) Close() {
	s := v.c.state
	s.mu.Lock()
	vs := s.views[v.id]
	for i, x := range vs {
		if x == v {
			s.views[v.id] = append(vs[:i:i], vs[i+1:]...)
			break
		}
	}
	if len(s.views[v.id]) == 0 {
		delete(s.views, v.id)
	}
	s.mu.Unlock()
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
}

func (v *ConversationView) changed() {
	v.mu.Lock()
	fn := v.onChange
	v.mu.Unlock()
	if fn != nil {
		v.c.q.push(fn)
	}
}

// apply takes one live event (the reader goroutine, in order).
func (v *ConversationView) apply(ev Event) {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	if v.syncing || v.err != nil {
		// During a reload, or after one failed (the view is empty and
		// reloads now): the page read covers what came before.
		v.buf = append(v.buf, ev)
		v.startSyncLocked()
		v.mu.Unlock()
		return
	}
	v.keepOlderLocked(ev)
	v.applyLocked(ev)
	v.mu.Unlock()
	v.changed()
}

// applyLocked applies ev.
func (v *ConversationView) applyLocked(ev Event) {
	switch e := ev.(type) {
	case NewMessage:
		v.placeLocked(e.Message)
	case MessageDeleted:
		v.placeLocked(e.Message)
		v.requoteLocked(e.Message)
	case MessageEdited:
		v.editLocked(e.Message)
	case ReactionAdded:
		v.reactLocked(e, true)
	case ReactionRemoved:
		v.reactLocked(ReactionAdded(e), false)
	}
}

// placeLocked puts a live message in the loaded ones: in place when
// loaded (a page and a live event overlap), which turns a message into its
// tombstone, or after the newest. Any seqs between the newest and a new
// message are of messages this user may not see (the stream holds every
// one they may see, in order: see ConversationView). A deletion of a
// message past the newest is of one this user never saw: nothing to show.
func (v *ConversationView) placeLocked(m parley.Message) {
	newest := int64(0)
	if n := len(v.msgs); n > 0 {
		newest = v.msgs[n-1].Seq
	}
	switch {
	case m.Seq > newest && !m.Deleted:
		v.msgs = append(v.msgs, m)
	case m.Seq > newest:
	default:
		i := sort.Search(len(v.msgs), func(i int) bool { return v.msgs[i].Seq >= m.Seq })
		if i < len(v.msgs) && v.msgs[i].Seq == m.Seq && (m.Deleted || !v.msgs[i].Deleted) {
			if !m.Deleted && m.Reactions == nil {
				// Events carry no reactions: keep the page's.
				m.Reactions = v.msgs[i].Reactions
			}
			v.msgs[i] = m
		}
	}
}

// indexLocked returns the index of the loaded message with seq, or -1.
func (v *ConversationView) indexLocked(seq int64) int {
	i := sort.Search(len(v.msgs), func(i int) bool { return v.msgs[i].Seq >= seq })
	if i < len(v.msgs) && v.msgs[i].Seq == seq {
		return i
	}
	return -1
}

// editLocked applies an edit to the loaded message (an edit of one not
// loaded yet needs nothing: its page will hold the current text), and
// to the quotes of it in loaded replies.
func (v *ConversationView) editLocked(m parley.Message) {
	if i := v.indexLocked(m.Seq); i >= 0 && v.msgs[i].ID == m.ID && !v.msgs[i].Deleted {
		x := &v.msgs[i]
		if m.Deleted {
			*x = m
		} else {
			x.Text, x.EditedAt, x.Attachment = m.Text, m.EditedAt, m.Attachment
		}
	}
	v.requoteLocked(m)
}

// requoteLocked updates the quotes of m in loaded replies to m as it is
// now (the server reads quotes when it reads a reply; a client follows
// the parent's events). A hidden quote (parley.Quote.Hidden: its parent's
// sender is blocked) stays hidden: an event of the parent that reaches
// the view anyway (one in flight when the block was made, applied to a
// page read after it) must not show it. An unblock reloads the view.
func (v *ConversationView) requoteLocked(m parley.Message) {
	for i := range v.msgs {
		q := v.msgs[i].ReplyTo
		if q == nil || q.MessageID != m.ID || q.Hidden {
			continue
		}
		nq := *q
		nq.Deleted = m.Deleted
		nq.Text = ""
		if !m.Deleted {
			nq.Text = QuoteText(m.Text)
		}
		v.msgs[i].ReplyTo = &nq
	}
}

// QuoteText is the part of a message's text a reply's quote carries: its
// first parley.QuoteRunes code points.
func QuoteText(text string) string {
	n := 0
	for i := range text {
		if n == parley.QuoteRunes {
			return text[:i]
		}
		n++
	}
	return text
}

// reactLocked sets an emoji's count on the loaded message from a
// reaction event (a state, so a page read after the event is unchanged).
func (v *ConversationView) reactLocked(e ReactionAdded, added bool) {
	i := v.indexLocked(e.Seq)
	if i < 0 || v.msgs[i].ID != e.MessageID {
		return
	}
	me := e.UserID == v.c.User().ID
	rs := slices.Clone(v.msgs[i].Reactions)
	j := slices.IndexFunc(rs, func(r parley.Reaction) bool { return r.Emoji == e.Emoji })
	switch {
	case e.Count <= 0 && j >= 0:
		rs = slices.Delete(rs, j, j+1)
	case e.Count <= 0:
	case j >= 0:
		rs[j].Count = e.Count
		if me {
			rs[j].Me = added
		}
	default:
		rs = append(rs, parley.Reaction{Emoji: e.Emoji, Count: e.Count, Me: me && added})
	}
	v.msgs[i].Reactions = rs
}

// startSyncLocked reloads the view in the background: the newest page,
// with live events buffered meanwhile and applied after it.
func (v *ConversationView) startSyncLocked() {
	if v.syncing {
		return
	}
	v.syncing = true
	v.msgs, v.hasMore, v.older = nil, false, 0
	v.c.spawn(func(ctx context.Context) {
		var page parley.MessagePage
		err := v.c.call(ctx, protocol.OpHistory, protocol.History{ConversationID: v.id, Limit: v.pageSize}, &page, true)
		v.mu.Lock()
		if err != nil {
			// The view stays empty; the next event reloads it, and that
			// page covers what was buffered here.
			v.err, v.syncing, v.needSync, v.buf = err, false, false, nil
			v.mu.Unlock()
			v.changed()
			return
		}
		v.msgs, v.hasMore, v.older, v.err = page.Messages, page.HasMore, olderCursor(page), nil
		v.mu.Unlock()
		v.finishSync()
	})
}

// finishSync applies the events buffered during a load; a resync seen
// meanwhile starts another.
func (v *ConversationView) finishSync() {
	v.mu.Lock()
	if v.needSync {
		v.needSync, v.syncing, v.buf = false, false, nil
		v.startSyncLocked()
		v.mu.Unlock()
		return
	}
	buf := v.buf
	v.buf, v.syncing = nil, false
	for _, ev := range buf {
		v.applyLocked(ev)
	}
	v.mu.Unlock()
	v.changed()
}

// reset throws the view away and loads the newest page again (after a
// resync, when events were skipped).
func (v *ConversationView) reset() {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	if v.syncing {
		// The fetch under way may predate the resync: fetch again after.
		v.needSync = true
		v.mu.Unlock()
		return
	}
	v.msgs, v.hasMore, v.older, v.buf = nil, false, 0, nil
	v.startSyncLocked()
	v.mu.Unlock()
}
