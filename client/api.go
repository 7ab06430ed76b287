package client

import (
	"context"
	"encoding/json"
	"fmt"
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
// first (every page of them: the server cuts long lists), and from then on keeps them up to date from events (new messages,
// reads, deletes, changes): CachedConversations returns that list.
func (c *Client) Conversations(ctx context.Context) ([]parley.Conversation, error) {
	s := c.state
	s.mu.Lock()
	s.listing++
	sentAt := s.evSeq
	s.mu.Unlock()
	list, err := c.listConversations(ctx)
	s.mu.Lock()
	s.listing--
	touched := s.touched
	if s.listing == 0 {
		s.touched = nil
	}
	if err != nil {
		if !s.loaded && s.listing == 0 {
			s.unread = make(map[string]*unread)
		}
		s.mu.Unlock()
		return nil, err
	}
	s.loaded = true
	old := s.convs
	s.convs = make(map[string]*parley.Conversation, len(list))
	for i := range list {
		cv := list[i]
		if o := old[cv.ID]; o != nil && o.LastSeq > cv.LastSeq {
			s.convs[cv.ID] = o // keep what newer events made of it below
		}
		s.takeReplyLocked(&cv, sentAt)
		if got := s.convs[cv.ID]; got != nil {
			list[i] = s.viewLocked(got)
		} // else past MaxKnownConversations: returned as the server sent it, not cached
	}
	// A conversation that had events while the pages were fetched may
	// have moved to a page already read and be missing: fetch it alone.
	for id, at := range touched {
		if at > sentAt && s.convs[id] == nil {
			s.refreshLocked(id)
		}
	}
	s.mu.Unlock()
	c.noteListed(list)
	c.emit(ConversationsChanged{})
	return list, nil
}

// MaxConversationListBytes bounds the conversation list Conversations
// fetches, counted as the JSON of its pages: a server whose pages would
// go past it (a broken or hostile one that says has_more for ever) fails
// the call with ETOOLARGE rather than fill the app's memory. A list of
// that size is some 3,000 groups of parley.MaxGroupMembers members each.
const MaxConversationListBytes = 64 << 20

// listConversations fetches every page of the conversation list,
// following the server's cursor while it says has_more (an older server
// sends the whole list and no has_more). The pages share one deadline
// (ctx's, else DefaultRequestTimeout for them all, as for every call),
// at most MaxConversationListBytes, and a cursor the server gives twice
// fails the call: a list that would never end is the server's fault.
func (c *Client) listConversations(ctx context.Context) ([]parley.Conversation, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.requestTimeout)
		defer cancel()
	}
	var all []parley.Conversation
	var q protocol.Conversations
	size := 0
	cursors := make(map[string]bool) // their bytes are counted in size
	for {
		var raw json.RawMessage
		if err := c.call(ctx, protocol.OpConversations, q, &raw, true); err != nil {
			return nil, err
		}
		if size += len(raw); size > c.opts.listBytes {
			return nil, parley.Errorf(parley.ETOOLARGE, "client: the conversation list is over %d bytes (MaxConversationListBytes)", c.opts.listBytes)
		}
		var page protocol.ConversationList
		if err := unmarshalReply(raw, &page); err != nil {
			return nil, fmt.Errorf("client: bad %s reply: %w", protocol.OpConversations, err)
		}
		all = append(all, page.Conversations...)
		if !page.HasMore || page.Next == "" {
			return dedupeConversations(all), nil
		}
		if cursors[page.Next] {
			return nil, fmt.Errorf("client: bad %s reply: the server gave the cursor %q twice (the list would never end)", protocol.OpConversations, page.Next)
		}
		cursors[page.Next] = true
		q.Cursor = page.Next
	}
}

// unmarshalReply decodes a reply's data into out, as call does: no data
// leaves out as it is.
func unmarshalReply(raw json.RawMessage, out any) error {
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}

// dedupeConversations keeps the first of each id: a conversation whose
// activity changed between pages may come twice.
func dedupeConversations(list []parley.Conversation) []parley.Conversation {
	seen := make(map[string]bool, len(list))
	out := list[:0]
	for _, cv := range list {
		if !seen[cv.ID] {
			seen[cv.ID] = true
			out = append(out, cv)
		}
	}
	return out
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
		x.UnreadCount, x.UnreadMentions, x.ReadSeq = u.count(), u.mentions(), u.read
	}
	return x
}

// Conversation fetches one conversation as this user sees it.
func (c *Client) Conversation(ctx context.Context, conversationID string) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpConversation, protocol.ConversationRef{ConversationID: conversationID}, &cv, true)
	return cv, err
}

// CreateDirect opens (or finds) the direct conversation with the user
// whose id is userID. It fails with EINVALID for an empty id and ENOTFOUND
// for an unknown user.
func (c *Client) CreateDirect(ctx context.Context, userID string) (parley.Conversation, error) {
	if userID == "" {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "user id is required")
	}
	return c.createDirect(ctx, protocol.CreateDirect{UserID: userID})
}

// CreateDirectByName opens (or finds) the direct conversation with the user
// named username (any form of the name the server accepts: docs/protocol.md
// section 1, usernames). It fails with EINVALID for an empty name and
// ENOTFOUND for an unknown user.
func (c *Client) CreateDirectByName(ctx context.Context, username string) (parley.Conversation, error) {
	if username == "" {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "username is required")
	}
	return c.createDirect(ctx, protocol.CreateDirect{Username: username})
}

func (c *Client) createDirect(ctx context.Context, req protocol.CreateDirect) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpCreateDirect, req, &cv, false)
	return cv, err
}

// CreateGroup creates a group with these members (and this user).
func (c *Client) CreateGroup(ctx context.Context, title string, memberIDs []string) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpCreateGroup, protocol.CreateGroup{Title: title, MemberIDs: memberIDs}, &cv, false)
	return cv, err
}

// UpdateConversation renames a group, changes its members or their roles
// (several at once, in one request). Owners may do all of it; a member
// may only leave (EFORBIDDEN otherwise); a non-member or removed user
// gets ENOTFOUND. The helpers below make one change each.
func (c *Client) UpdateConversation(ctx context.Context, u protocol.UpdateConversation) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpUpdateConversation, u, &cv, false)
	return cv, err
}

// SetMuted mutes or unmutes a conversation for this user, on all their
// devices (a FlagsChanged event reaches each, and CachedConversations
// follows). A muted conversation keeps its unread count; an app does not
// notify for it.
func (c *Client) SetMuted(ctx context.Context, conversationID string, muted bool) (parley.Conversation, error) {
	return c.setFlags(ctx, protocol.SetFlags{ConversationID: conversationID, Muted: &muted})
}

// SetArchived archives or unarchives a conversation for this user, on
// all their devices. An archived conversation (Conversation.Archived)
// belongs out of the main list; the next message in it ends the archive
// (the SDK clears Archived in CachedConversations when it arrives).
func (c *Client) SetArchived(ctx context.Context, conversationID string, archived bool) (parley.Conversation, error) {
	return c.setFlags(ctx, protocol.SetFlags{ConversationID: conversationID, Archived: &archived})
}

func (c *Client) setFlags(ctx context.Context, f protocol.SetFlags) (parley.Conversation, error) {
	var cv parley.Conversation
	err := c.call(ctx, protocol.OpSetFlags, f, &cv, true) // idempotent: retried on the next connection
	return cv, err
}

// Rename renames a group (owners only).
func (c *Client) Rename(ctx context.Context, conversationID, title string) (parley.Conversation, error) {
	return c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: conversationID, Title: &title})
}

// AddMembers adds users to a group as members (owners only).
func (c *Client) AddMembers(ctx context.Context, conversationID string, userIDs ...string) (parley.Conversation, error) {
	return c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: conversationID, Add: userIDs})
}

// RemoveMembers removes users from a group (owners only; to leave, use
// Leave).
func (c *Client) RemoveMembers(ctx context.Context, conversationID string, userIDs ...string) (parley.Conversation, error) {
	return c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: conversationID, Remove: userIDs})
}

// Promote makes members owners; Demote makes owners members (owners
// only; demoting the last owner is EINVALID).
func (c *Client) Promote(ctx context.Context, conversationID string, userIDs ...string) (parley.Conversation, error) {
	return c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: conversationID, Promote: userIDs})
}

// Demote: see Promote.
func (c *Client) Demote(ctx context.Context, conversationID string, userIDs ...string) (parley.Conversation, error) {
	return c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: conversationID, Demote: userIDs})
}

// Leave removes this user from a group (anyone may). When they were its
// last owner, its longest-standing member becomes owner. Once the
// server's event arrives, IsRemoved reports the conversation.
func (c *Client) Leave(ctx context.Context, conversationID string) error {
	_, err := c.UpdateConversation(ctx, protocol.UpdateConversation{ConversationID: conversationID, Remove: []string{c.User().ID}})
	return err
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

// React adds emoji as this user's reaction to a message and returns the
// message's reactions as this user sees them. Adding it again changes
// nothing (the call is idempotent, so it is retried across a dropped
// link). It fails with EINVALID for something that is not an emoji
// (parley.ValidateEmoji), a deleted message, or a 21st different emoji
// on the message (parley.MaxReactionKinds). Reactions do not wait in the
// outbox: offline, React fails with EUNAVAILABLE.
func (c *Client) React(ctx context.Context, conversationID, messageID, emoji string) ([]parley.Reaction, error) {
	return c.react(ctx, protocol.React{ConversationID: conversationID, MessageID: messageID, Emoji: emoji})
}

// Unreact removes this user's reaction emoji from a message (nothing
// happens when it has none) and returns the message's reactions.
func (c *Client) Unreact(ctx context.Context, conversationID, messageID, emoji string) ([]parley.Reaction, error) {
	return c.react(ctx, protocol.React{ConversationID: conversationID, MessageID: messageID, Emoji: emoji, Remove: true})
}

func (c *Client) react(ctx context.Context, req protocol.React) ([]parley.Reaction, error) {
	if err := parley.ValidateEmoji(req.Emoji); err != nil {
		return nil, err
	}
	var r protocol.ReactResult
	err := c.call(ctx, protocol.OpReact, req, &r, true)
	return r.Reactions, err
}

// MarkRead moves this user's read position in a conversation up to seq.
// It is idempotent, so it is retried across a dropped link.
func (c *Client) MarkRead(ctx context.Context, conversationID string, seq int64) (int64, error) {
	var r protocol.ReadResult
	err := c.call(ctx, protocol.OpRead, protocol.Read{ConversationID: conversationID, Seq: seq}, &r, true)
	return r.ReadSeq, err
}

// FetchPresence asks the server which contacts are online now, replaces
// the client's presence set with the answer and returns it as Online does
// (sorted by id, names as far as the client knows them).
func (c *Client) FetchPresence(ctx context.Context) ([]parley.User, error) {
	var p protocol.PresenceList
	if err := c.call(ctx, protocol.OpPresence, nil, &p, true); err != nil {
		return nil, err
	}
	s := c.state
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setOnlineLocked(p.Online)
	return s.usersLocked(s.online), nil
}
