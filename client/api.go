package client

import (
	"context"
	"sort"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// The calls below wait for a connection (failing at once while the client
// is Disconnected) and, without a deadline in ctx, give up after
// DefaultRequestTimeout. Reads are repeated on the next connection if the
// link drops before the reply; writes are not (they fail with
// EUNAVAILABLE and the app decides), except Send, which has the outbox.

// Conversations fetches the user's conversations, most recent activity
// first, and from then on keeps them up to date from events (new messages,
// reads, deletes, changes): CachedConversations returns that list.
func (c *Client) Conversations(ctx context.Context) ([]parley.Conversation, error) {
	s := c.state
	s.mu.Lock()
	s.listing++
	sentAt := s.evSeq
	s.mu.Unlock()
	var list protocol.ConversationList
	err := c.call(ctx, protocol.OpConversations, nil, &list, true)
	s.mu.Lock()
	s.listing--
	if err != nil {
		if !s.loaded && s.listing == 0 {
			s.unread = make(map[string]*unread)
		}
		s.mu.Unlock()
		return nil, err
	}
	s.loaded = true
	old := s.convs
	s.convs = make(map[string]*parley.Conversation, len(list.Conversations))
	for i := range list.Conversations {
		cv := list.Conversations[i]
		if o := old[cv.ID]; o != nil && o.LastSeq > cv.LastSeq {
			s.convs[cv.ID] = o // keep what newer events made of it below
		}
		s.takeReplyLocked(&cv, sentAt)
		list.Conversations[i] = s.viewLocked(s.convs[cv.ID])
	}
	s.mu.Unlock()
	c.emit(ConversationsChanged{})
	return list.Conversations, nil
}

// CachedConversations returns the conversation list as events left it
// (empty until Conversations was called once), most recent activity first.
func (c *Client) CachedConversations() []parley.Conversation {
	s := c.state
	s.mu.Lock()
	out := make([]parley.Conversation, 0, len(s.convs))
	for _, cv := range s.convs {
		out = append(out, s.viewLocked(cv))
	}
	s.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].LastActivityAt.Equal(out[j].LastActivityAt) {
			return out[i].LastActivityAt.After(out[j].LastActivityAt)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// viewLocked copies a cached conversation with the unread count and read
// position its tracker keeps. Caller holds s.mu.
func (s *chatState) viewLocked(cv *parley.Conversation) parley.Conversation {
	x := *cv
	x.Members = append([]parley.Member(nil), cv.Members...)
	if u := s.unread[cv.ID]; u != nil {
		x.UnreadCount, x.ReadSeq = u.count(), u.read
	}
	return x
}

// Conversation fetches one conversation as this user sees it.
func (c *Client) Conversation(ctx context.Context, conversationID string) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpConversation, protocol.ConversationRef{ConversationID: conversationID}, &cv, true)
	return cv, err
}

// CreateDirect opens (or finds) the direct conversation with a user, named
// by id (userID) or, when userID is empty, by username.
func (c *Client) CreateDirect(ctx context.Context, userID, username string) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpCreateDirect, protocol.CreateDirect{UserID: userID, Username: username}, &cv, false)
	return cv, err
}

// CreateGroup creates a group with these members (and this user).
func (c *Client) CreateGroup(ctx context.Context, title string, memberIDs []string) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpCreateGroup, protocol.CreateGroup{Title: title, MemberIDs: memberIDs}, &cv, false)
	return cv, err
}

// UpdateConversation renames a group or changes its members.
func (c *Client) UpdateConversation(ctx context.Context, u protocol.UpdateConversation) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpUpdateConversation, u, &cv, false)
	return cv, err
}

// History fetches one page of a conversation's messages (see
// parley.MessageQuery for Before/After: 0 is "not given", FromStart asks
// for the oldest page). ConversationView does the bookkeeping for an app;
// History is the raw call.
func (c *Client) History(ctx context.Context, conversationID string, q parley.MessageQuery) (parley.MessagePage, error) {
	h := protocol.History{ConversationID: conversationID, Limit: q.Limit}
	if q.Before != 0 {
		h.Before = protocol.Cursor(q.Before)
	}
	if q.After != 0 || q.FromStart {
		h.After = protocol.Cursor(q.After)
	}
	var page parley.MessagePage
	err := c.call(ctx, protocol.OpHistory, h, &page, true)
	return page, err
}

// Delete turns one of this user's messages into a tombstone.
func (c *Client) Delete(ctx context.Context, conversationID, messageID string) (parley.Message, error) {
	var m parley.Message
	err := c.call(ctx, protocol.OpDelete, protocol.Delete{ConversationID: conversationID, MessageID: messageID}, &m, true)
	return m, err
}

// MarkRead moves this user's read position in a conversation up to seq.
// It is idempotent, so it is retried across a dropped link.
func (c *Client) MarkRead(ctx context.Context, conversationID string, seq int64) (int64, error) {
	var r protocol.ReadResult
	err := c.call(ctx, protocol.OpRead, protocol.Read{ConversationID: conversationID, Seq: seq}, &r, true)
	return r.ReadSeq, err
}

// FetchPresence asks the server which contacts are online now and
// replaces the client's presence set with the answer.
func (c *Client) FetchPresence(ctx context.Context) ([]string, error) {
	var p protocol.PresenceList
	if err := c.call(ctx, protocol.OpPresence, nil, &p, true); err != nil {
		return nil, err
	}
	s := c.state
	s.mu.Lock()
	s.online = make(map[string]bool, len(p.Online))
	for _, id := range p.Online {
		s.online[id] = true
	}
	s.mu.Unlock()
	sort.Strings(p.Online)
	return p.Online, nil
}
