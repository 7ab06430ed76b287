package server

import (
	"context"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// MaxConversationsPage is the largest limit a conversations request may
// ask for.
const MaxConversationsPage = 1000

// conversations returns a page of the user's conversations, newest
// activity first (ties by id, descending), at most maxBytes of them in
// JSON (see MaxReplyBytes) and at most d.Limit; has_more and next say to
// ask again with next as the cursor, which returns the conversations that
// come after the page's last one in that order. A store that reads the
// list a page at a time (parley.ConversationPager: both engines) reads
// only the page; otherwise each page is cut from the user's whole list.
func (s *service) conversations(ctx context.Context, u parley.User, d protocol.Conversations, maxBytes int) (protocol.ConversationList, error) {
	if err := s.limits.reads.check(u.ID); err != nil {
		return protocol.ConversationList{}, err
	}
	return s.conversationsOf(ctx, u, d, maxBytes)
}

// conversationsOf is conversations without the user's rate limit: the
// server API's export and erase, which have limits of their own.
func (s *service) conversationsOf(ctx context.Context, u parley.User, d protocol.Conversations, maxBytes int) (protocol.ConversationList, error) {
	if d.Limit < 0 || d.Limit > MaxConversationsPage {
		return protocol.ConversationList{}, parley.Errorf(parley.EINVALID, "limit must be 1 to %d", MaxConversationsPage)
	}
	var after convCursor
	if d.Cursor != "" {
		var err error
		if after, err = parseConvCursor(d.Cursor); err != nil {
			return protocol.ConversationList{}, err
		}
	}
	if p, ok := s.store.(parley.ConversationPager); ok {
		// One page from the store: limit, or convChunk when the client
		// asked for as many as fit, and one more to know if more follow.
		n := d.Limit
		if n == 0 {
			n = convChunk
		}
		cs, err := p.ConversationsPage(ctx, u.ID, after.at, after.id, n+1)
		if err != nil {
			return protocol.ConversationList{}, err
		}
		return pageConversations(cs, convCursor{}, n, maxBytes), nil
	}
	cs, err := s.store.Conversations(ctx, u.ID)
	if err != nil {
		return protocol.ConversationList{}, err
	}
	return pageConversations(cs, after, d.Limit, maxBytes), nil
}

// convChunk is the most conversations a page holds when the client
// leaves the count to the server ("as many as fit"): about what fits in
// a reply's bytes anyway (a conversation with its members takes a few
// hundred bytes to a few KiB), and a bound on what one page reads.
const convChunk = 256

// convCursor is a place in the conversation list: the last activity and
// id of the conversation a page ended with. Its text form is
// "<unix nanoseconds>:<id>", opaque to clients.
type convCursor struct {
	at time.Time
	id string
}

func cursorOf(c *parley.Conversation) convCursor {
	return convCursor{at: c.LastActivityAt, id: c.ID}
}

func (c convCursor) String() string {
	return strconv.FormatInt(c.at.UnixNano(), 10) + ":" + c.id
}

func parseConvCursor(s string) (convCursor, error) {
	ns, id, ok := strings.Cut(s, ":")
	n, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return convCursor{}, parley.Errorf(parley.EINVALID, "cursor is not one this server gave")
	}
	return convCursor{at: time.Unix(0, n), id: id}, nil
}

// before says a comes before b in the list: newer activity, or the same
// activity and the greater id.
func (a convCursor) before(b convCursor) bool {
	if !a.at.Equal(b.at) {
		return a.at.After(b.at)
	}
	return a.id > b.id
}

// pageConversations cuts the page after `after` (the zero cursor: from
// the start) out of the user's whole list cs: at most limit (0: no count
// limit) and maxBytes of JSON, at least one when any remain.
func pageConversations(cs []parley.Conversation, after convCursor, limit, maxBytes int) protocol.ConversationList {
	// The stores sort the same way; sorting again makes the cursor exact
	// whatever the store does with equal times.
	slices.SortFunc(cs, func(a, b parley.Conversation) int {
		switch ca, cb := cursorOf(&a), cursorOf(&b); {
		case ca.before(cb):
			return -1
		case cb.before(ca):
			return 1
		}
		return 0
	})
	if after.id != "" {
		cs = cs[sort.Search(len(cs), func(i int) bool { return after.before(cursorOf(&cs[i])) }):]
	}
	var p protocol.ConversationList
	if limit > 0 && len(cs) > limit {
		cs, p.HasMore = cs[:limit], true
	}
	for i := range cs {
		cs[i] = conversationURLs(cs[i])
	}
	if n := fitting(cs, maxBytes, false); n < len(cs) {
		cs, p.HasMore = cs[:n], true
	}
	if p.HasMore {
		p.Next = cursorOf(&cs[len(cs)-1]).String()
	}
	p.Conversations = nonNil(cs)
	return p
}

func (s *service) conversation(ctx context.Context, u parley.User, id string) (parley.Conversation, error) {
	if err := limitedConversationOp(s.limits.reads, u.ID, id); err != nil {
		return parley.Conversation{}, err
	}
	c, err := s.store.Conversation(ctx, u.ID, id)
	return conversationURLs(c), err
}

func (s *service) createDirect(ctx context.Context, u parley.User, d protocol.CreateDirect) (parley.Conversation, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	other := d.UserID
	switch {
	case d.UserID != "" && d.Username != "":
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "give user_id or username, not both")
	case d.UserID == "" && d.Username == "":
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "user_id or username is required")
	case d.Username != "":
		o, err := s.userNamed(ctx, d.Username)
		if err != nil {
			return parley.Conversation{}, err
		}
		other = o.ID
	}
	if other == u.ID {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "a direct conversation needs another user")
	}
	c, evs, err := s.store.CreateDirect(ctx, u.ID, other)
	return s.publishViewed(ctx, u, c, evs, err)
}

// viewed returns c as u sees it (unread count, read position): what a
// write returns is the shared view.
func (s *service) viewed(ctx context.Context, u parley.User, c parley.Conversation) (parley.Conversation, error) {
	v, err := s.store.Conversation(ctx, u.ID, c.ID)
	if err != nil {
		return conversationURLs(c), nil // u left it (removed themselves)
	}
	return conversationURLs(v), nil
}

// publishViewed finishes a conversation write: unless err, it publishes
// evs and returns c as u sees it (viewed).
func (s *service) publishViewed(ctx context.Context, u parley.User, c parley.Conversation, evs []parley.Event, err error) (parley.Conversation, error) {
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publishStored(ctx, evs)
	return s.viewed(ctx, u, c)
}

// checkTitle refuses a blank title (with the message ifBlank), one that
// is not UTF-8 and one longer than parley.MaxTitleRunes.
func checkTitle(t, ifBlank string) error {
	if strings.TrimSpace(t) == "" {
		return parley.Errorf(parley.EINVALID, "%s", ifBlank)
	}
	if !utf8.ValidString(t) {
		return parley.Errorf(parley.EINVALID, "title is not valid UTF-8")
	}
	if utf8.RuneCountInString(t) > parley.MaxTitleRunes {
		return parley.Errorf(parley.EINVALID, "title is longer than %d characters", parley.MaxTitleRunes)
	}
	return nil
}

func (s *service) createGroup(ctx context.Context, u parley.User, d protocol.CreateGroup) (parley.Conversation, error) {
	if err := s.limits.conversationWrites.check(u.ID); err != nil {
		return parley.Conversation{}, err
	}
	if err := checkTitle(d.Title, "title is required"); err != nil {
		return parley.Conversation{}, err
	}
	if len(d.MemberIDs) >= parley.MaxGroupMembers {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "a group has at most %d members", parley.MaxGroupMembers)
	}
	c, evs, err := s.store.CreateGroup(ctx, u.ID, d.Title, d.MemberIDs)
	return s.publishViewed(ctx, u, c, evs, err)
}

func (s *service) updateConversation(ctx context.Context, u parley.User, d protocol.UpdateConversation) (parley.Conversation, error) {
	if err := limitedConversationOp(s.limits.conversationWrites, u.ID, d.ConversationID); err != nil {
		return parley.Conversation{}, err
	}
	if d.Title != nil {
		if err := checkTitle(*d.Title, "title must not be empty"); err != nil {
			return parley.Conversation{}, err
		}
	}
	if d.Title == nil && len(d.Add) == 0 && len(d.Remove) == 0 && len(d.Promote) == 0 && len(d.Demote) == 0 {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "nothing to change: give title, add, remove, promote or demote")
	}
	for _, l := range []struct {
		name string
		ids  []string
	}{{"add", d.Add}, {"remove", d.Remove}, {"promote", d.Promote}, {"demote", d.Demote}} {
		if len(l.ids) > parley.MaxGroupMembers {
			return parley.Conversation{}, parley.Errorf(parley.EINVALID, "%s names more than %d users", l.name, parley.MaxGroupMembers)
		}
	}
	c, evs, err := s.store.UpdateConversation(ctx, u.ID, d.ConversationID, parley.ConversationChange{
		Title: d.Title, Add: d.Add, Remove: d.Remove, Promote: d.Promote, Demote: d.Demote,
	})
	return s.publishViewed(ctx, u, c, evs, err)
}

// setFlags changes u's own flags of a conversation (set_flags, PATCH
// /v1/conversations/{id}/flags); the event goes to u's connections only.
func (s *service) setFlags(ctx context.Context, u parley.User, d protocol.SetFlags) (parley.Conversation, error) {
	if err := limitedConversationOp(s.limits.conversationWrites, u.ID, d.ConversationID); err != nil {
		return parley.Conversation{}, err
	}
	if d.Muted == nil && d.Archived == nil {
		return parley.Conversation{}, parley.Errorf(parley.EINVALID, "nothing to change: give muted or archived")
	}
	c, evs, err := s.store.SetFlags(ctx, u.ID, d.ConversationID, d.Muted, d.Archived)
	if err != nil {
		return parley.Conversation{}, err
	}
	s.publishStored(ctx, evs)
	return conversationURLs(c), nil
}
