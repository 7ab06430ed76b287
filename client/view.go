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
// ordered by Seq and contiguous from the oldest loaded to the newest.
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
	syncing  bool    // a fetch is under way; live events wait in buf
	buf      []Event // live events that came during a fetch
	needSync bool    // a gap (or a resync) was seen during a fetch
	onChange func()
	closed   bool
	err      error // the last background fetch error
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

// Err returns the last error of a background refetch (after a resync or a
// gap), nil when it succeeded; the view retries on the next event.
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
	v.mu.Unlock()
	var page parley.MessagePage
	err := v.c.call(ctx, protocol.OpHistory, protocol.History{ConversationID: v.id, Before: protocol.Cursor(before), Limit: v.pageSize}, &page, true)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	n := 0
	if v.hasMore && v.older == before { // no refetch or other LoadMore meanwhile
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
	}
	v.mu.Unlock()
	v.changed()
	return n, nil
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
	if v.syncing {
		v.buf = append(v.buf, ev)
		v.mu.Unlock()
		return
	}
	ok := v.applyLocked(ev)
	if !ok {
		v.startSyncLocked()
	}
	v.mu.Unlock()
	v.changed()
}

// applyLocked applies ev; false means a gap: ev is newer than the message
// after the newest loaded one, so the missing ones must be fetched.
func (v *ConversationView) applyLocked(ev Event) bool {
	var m parley.Message
	switch e := ev.(type) {
	case NewMessage:
		m = e.Message
	case MessageDeleted:
		m = e.Message
		v.requoteLocked(m)
	case MessageEdited:
		v.editLocked(e.Message)
		return true
	case ReactionAdded:
		v.reactLocked(e, true)
		return true
	case ReactionRemoved:
		v.reactLocked(ReactionAdded(e), false)
		return true
	default:
		return true
	}
	if v.placeLocked(m, false) {
		return true
	}
	buf := v.buf
	v.buf = append([]Event{ev}, buf...)
	return false
}

// placeLocked puts m in the loaded messages: in place when loaded (a page
// and a live event overlap), or after the newest. A live message after a
// gap is not placed (false): the seqs between must be fetched first. A
// fetched one is placed whatever its seq: the fetch read every seq up to
// it, so none it lacks is one this user may see (a message of a user
// they blocked keeps its seq and leaves a gap for good).
func (v *ConversationView) placeLocked(m parley.Message, fetched bool) bool {
	newest := int64(0)
	if n := len(v.msgs); n > 0 {
		newest = v.msgs[n-1].Seq
	}
	switch {
	case m.Seq <= newest:
		// Already loaded (a page and a live event overlap): replace in
		// place, which turns a message into its tombstone.
		i := sort.Search(len(v.msgs), func(i int) bool { return v.msgs[i].Seq >= m.Seq })
		if i < len(v.msgs) && v.msgs[i].Seq == m.Seq {
			if m.Deleted || !v.msgs[i].Deleted {
				if !m.Deleted && m.Reactions == nil {
					// Events carry no reactions: keep the page's.
					m.Reactions = v.msgs[i].Reactions
				}
				v.msgs[i] = m
			}
		}
		return true
	case fetched || m.Seq == newest+1 || (len(v.msgs) == 0 && !v.hasMore && m.Seq == 1):
		v.msgs = append(v.msgs, m)
		return true
	}
	return false
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
// the parent's events).
func (v *ConversationView) requoteLocked(m parley.Message) {
	for i := range v.msgs {
		q := v.msgs[i].ReplyTo
		if q == nil || q.MessageID != m.ID {
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

// startSyncLocked fetches the messages after the newest loaded one in the
// background, buffering live events meanwhile.
func (v *ConversationView) startSyncLocked() {
	if v.syncing {
		return
	}
	v.syncing = true
	v.c.spawn(func(ctx context.Context) {
		// after: the seq read up to, from the loaded messages and the
		// server's next (a page may end past its last message: a window
		// of messages hidden by a block).
		after := int64(0)
		for {
			v.mu.Lock()
			if n := len(v.msgs); n > 0 {
				after = max(after, v.msgs[n-1].Seq)
			}
			v.mu.Unlock()
			q := protocol.History{ConversationID: v.id, After: protocol.Cursor(after), Limit: parley.MaxPageLimit}
			if after == 0 {
				q = protocol.History{ConversationID: v.id, Limit: v.pageSize}
			}
			var page parley.MessagePage
			if err := v.c.call(ctx, protocol.OpHistory, q, &page, true); err != nil {
				v.mu.Lock()
				v.err, v.syncing = err, false
				v.mu.Unlock()
				return
			}
			v.mu.Lock()
			if after == 0 {
				v.msgs, v.hasMore, v.older = page.Messages, page.HasMore, olderCursor(page)
			} else {
				for _, m := range page.Messages {
					v.placeLocked(m, true)
				}
			}
			v.err = nil
			v.mu.Unlock()
			if after == 0 || !page.HasMore {
				break
			}
			// An older server sends no next: the messages say. A page
			// that moves the cursor nowhere ends the fetch rather than
			// asking for itself again.
			next := page.Next
			if n := len(page.Messages); n > 0 {
				next = max(next, page.Messages[n-1].Seq)
			}
			if next <= after {
				break
			}
			after = next
		}
		v.finishSync()
	})
}

// finishSync applies the events buffered during a fetch; a gap among them
// starts another fetch.
func (v *ConversationView) finishSync() {
	v.mu.Lock()
	if v.needSync {
		v.needSync, v.syncing = false, false
		v.msgs, v.hasMore, v.older, v.buf = nil, false, 0, nil
		v.startSyncLocked()
		v.mu.Unlock()
		return
	}
	buf := v.buf
	v.buf = nil
	v.syncing = false
	for i, ev := range buf {
		if !v.applyLocked(ev) {
			v.buf = append(v.buf, buf[i+1:]...)
			v.startSyncLocked()
			break
		}
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
