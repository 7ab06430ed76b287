package client

import (
	"slices"

	"github.com/parleychat/parley"
)

// unread keeps one conversation's unread count right from events and
// fetches. The count is messages from others, not deleted, with a seq
// above the user's read position.
//
// The server's answer (a conversation's unread_count, read_seq and
// last_seq) covers the seqs (read, base]; what events said about newer
// seqs is kept per seq in extra. So a new message is never counted twice
// or lost whichever way a fetch's reply and the events around it are
// ordered: a seq at or below the reply's last_seq is the reply's, a newer
// one the events'. What the SDK cannot know locally is the effect of a
// delete or of a partial read inside (read, base]: those ask the server
// again (refetch), and an ambiguous one that came while a fetch was under
// way (the reply may or may not include it) asks again after that reply.
// Every event that arrived before a request was sent is in its reply: an
// event is sent only after its commit. Guarded by chatState.mu.
type unread struct {
	read   int64          // the user's read position
	base   int64          // the server's count covers (read, base]
	server int64          // that count
	extra  map[int64]bool // seq > base -> counts as unread
	// serverMentions is the server's unread_mentions for (read, base];
	// mentioned holds the seqs > base whose message mentions the user
	// (as last sent or edited). Unread mentions follow the unread count.
	serverMentions int64
	mentioned      map[int64]bool
	// evSeq of the last ambiguous event (a delete or a partial read
	// inside (read, base]); a reply to a request sent before it cannot be
	// trusted for it.
	ambiguousAt uint64
	fetching    bool // a refetch is under way
	// appliedAt is when (in evSeq) the request of the reply in effect was
	// made: an older reply, overtaken by a newer one, is dropped.
	appliedAt uint64
	// dels are deletes of others' messages seen since appliedAt: one that
	// came after a request was made, inside that reply's range, may or may
	// not be in its count.
	dels []unreadDel
}

type unreadDel struct {
	seq int64
	at  uint64 // evSeq of the event
}

// count is the unread count as the server would give it now: at most
// parley.MaxUnreadCount (the server's count stops there, so its count
// of MaxUnreadCount means that many or more, and messages after it
// cannot take the count above it).
func (u *unread) count() int64 {
	n := int64(0)
	if u.read < u.base {
		n = u.server
	}
	for s, ok := range u.extra {
		if ok && s > u.read {
			n++
		}
	}
	return min(n, parley.MaxUnreadCount)
}

// mentions is the unread messages that mention the user.
func (u *unread) mentions() int64 {
	n := int64(0)
	if u.read < u.base {
		n = u.serverMentions
	}
	for s, ok := range u.mentioned {
		if ok && s > u.read && u.extra[s] {
			n++
		}
	}
	return min(n, parley.MaxUnreadCount)
}

// mention records whether a message newer than the server's count
// mentions me; false for an edit inside the server-counted range, which
// may have added or removed a mention only the server can count.
func (u *unread) mention(m parley.Message, me string) bool {
	if m.SenderID == me || m.Seq <= u.read {
		return true
	}
	if m.Seq <= u.base {
		return false
	}
	if u.mentioned == nil {
		u.mentioned = make(map[int64]bool)
	}
	u.mentioned[m.Seq] = !m.Deleted && slices.Contains(m.Mentions, me)
	return true
}

// setRead moves the read position up; it reports false when the new
// position falls inside the server-counted range, where only the server
// knows what remains unread.
func (u *unread) setRead(seq int64) bool {
	if seq <= u.read {
		return true
	}
	u.read = seq
	for s := range u.extra {
		if s <= seq {
			delete(u.extra, s)
		}
	}
	for s := range u.mentioned {
		if s <= seq {
			delete(u.mentioned, s)
		}
	}
	if seq >= u.base {
		u.server, u.serverMentions = 0, 0
		return true
	}
	return false
}

// message records a new message (or its tombstone); false when it is a
// delete inside the server-counted range.
func (u *unread) message(m parley.Message, me string, at uint64) bool {
	if m.Deleted && m.SenderID != me && m.Seq > u.read {
		u.dels = append(u.dels, unreadDel{m.Seq, at})
	}
	if m.SenderID == me {
		if m.Deleted {
			return true // own messages never count
		}
		// Sending moves the sender's read position (server rule).
		return u.setRead(m.Seq)
	}
	if m.Seq > u.base {
		if m.Seq > u.read {
			if u.extra == nil {
				u.extra = make(map[int64]bool)
			}
			u.extra[m.Seq] = !m.Deleted
			u.mention(m, me)
		}
		return true
	}
	// A seq the last reply covered: a new message is in it already; a
	// delete may or may not be.
	return !m.Deleted || m.Seq <= u.read
}

// reply applies the server's view of a conversation, fetched by a request
// sent when the client's event counter was at sentAt. It reports whether
// the reply can be trusted; false asks for another fetch.
func (u *unread) reply(cv *parley.Conversation, sentAt uint64) bool {
	if sentAt < u.appliedAt {
		return true // overtaken by a newer reply: nothing to learn
	}
	u.appliedAt = sentAt
	ok := u.ambiguousAt <= sentAt
	keep := u.dels[:0]
	for _, d := range u.dels {
		if d.at > sentAt {
			if d.seq > cv.ReadSeq && d.seq <= cv.LastSeq {
				ok = false // the reply may or may not count it
			}
			keep = append(keep, d)
		}
	}
	u.dels = keep
	read := u.read
	u.base, u.server, u.serverMentions = cv.LastSeq, cv.UnreadCount, cv.UnreadMentions
	u.read = cv.ReadSeq
	for s := range u.extra {
		if s <= u.base {
			delete(u.extra, s)
		}
	}
	for s := range u.mentioned {
		if s <= u.base {
			delete(u.mentioned, s)
		}
	}
	if read > u.read {
		// Our own read or send came after the server read: it is newer.
		if !u.setRead(read) {
			ok = false
		}
	}
	return ok
}
