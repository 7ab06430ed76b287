// Package storetest is the conformance suite of parley.Store: every
// implementation runs it, and it is the precise statement of the contract
// in store.go.
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) parley.Store { return openFresh(t) })
//	}
//
// open must return an empty store and arrange (t.Cleanup) for it to be
// closed; the suite also calls Close itself in some tests, so Close must be
// safe to call twice. Each subtest opens its own store, so they may run in
// parallel.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/parleychat/parley"
)

// Run runs the whole suite against the stores open makes. Beyond
// parley.Store, a store must implement the optional interfaces the server
// looks for (parley.MultiSender, parley.BulkReader and WriteErr, see
// testOptional): without them the server works, but a node slows down
// under load or cannot tell its readiness, so the suite fails.
func Run(t *testing.T, open func(t *testing.T) parley.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s parley.Store)
	}{
		{"Optional", testOptional},
		{"Users", testUsers},
		{"EnsureUser", testEnsureUser},
		{"LookAlikeNames", testLookAlikeNames},
		{"Direct", testDirect},
		{"Group", testGroup},
		{"GroupLimit", testGroupLimit},
		{"UpdateConversation", testUpdateConversation},
		{"UpdateConversationRules", testUpdateConversationRules},
		{"Roles", testRoles},
		{"Flags", testFlags},
		{"Block", testBlock},
		{"Tie", testTie},
		{"BlockedRunReplay", testBlockedRunReplay},
		{"ReplayScan", testReplayScan},
		{"ListWindow", testListWindow},
		{"HistoryWindow", testHistoryWindow},
		{"BlockedSearch", testBlockedSearch},
		{"BlockedQuote", testBlockedQuote},
		{"Consent", testConsent},
		{"Requests", testRequests},
		{"RequestsInRun", testRequestsInRun},
		{"Send", testSend},
		{"SendIdempotent", testSendIdempotent},
		{"SendValidation", testSendValidation},
		{"SendMessages", testSendMessages},
		{"SendMessagesAsync", testSendMessagesAsync},
		{"SendMessagesDropped", testSendMessagesDropped},
		{"SendMessagesConcurrent", testSendMessagesConcurrent},
		{"SendMessagesCancelled", testSendMessagesCancelled},
		{"Delete", testDelete},
		{"Edit", testEdit},
		{"EditRules", testEditRules},
		{"Reactions", testReactions},
		{"ReactionLimit", testReactionLimit},
		{"Replies", testReplies},
		{"MalformedMessageIDs", testMalformedMessageIDs},
		{"UnstorableText", testUnstorableText},
		{"Mentions", testMentions},
		{"Search", testSearch},
		{"SearchWords", testSearchWords},
		{"SearchFresh", testSearchFresh},
		{"MarkRead", testMarkRead},
		{"Unread", testUnread},
		{"Conversations", testConversations},
		{"ConversationsPage", testConversationsPage},
		{"Contacts", testContacts},
		{"ContactsDirect", testContactsDirect},
		{"ContactsLimit", testContactsLimit},
		{"ContactsWindow", testContactsWindow},
		{"Messages", testMessages},
		{"MessagesWhileSending", testMessagesWhileSending},
		{"Authorization", testAuthorization},
		{"EventsForWindows", testEventsForWindows},
		{"EventsAudience", testEventsAudience},
		{"EventsForAudience", testEventsForAudience},
		{"EventsLimits", testEventsLimits},
		{"Attachments", testAttachments},
		{"Files", testFiles},
		{"AttachmentInfo", testAttachmentInfo},
		{"ReadAttachment", testReadAttachment},
		{"UploadQuota", testUploadQuota},
		{"OrphanAttachments", testOrphanAttachments},
		{"Concurrency", testConcurrency},
		{"BatchIsolation", testBatchIsolation},
		{"CancelledContext", testCancelledContext},
		{"WriteHealth", testWriteHealth},
		{"BatchObserver", testBatchObserver},
		{"CommitPublisher", testCommitPublisher},
		{"WebhookQueue", testWebhookQueue},
		{"APIKeys", testAPIKeys},
		{"ModerateMessage", testModerateMessage},
		{"MessagesBySender", testMessagesBySender},
		{"EraseProgress", testEraseProgress},
		{"UserChangeLog", testUserChangeLog},
		{"UserChangeLogConcurrent", testUserChangeLogConcurrent},
		{"MarkDelivered", testMarkDelivered},
		{"Profiles", testProfiles},
		{"ProfileChunks", testProfileChunks},
		{"Close", testClose},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// testOptional: the store implements every optional interface the server
// type-asserts.
func testOptional(t *testing.T, s parley.Store) {
	for _, m := range missingOptional(s) {
		t.Errorf("%T is no %s", s, m)
	}
}

// missingOptional names the optional interfaces s lacks.
func missingOptional(s parley.Store) []string {
	var missing []string
	for _, o := range []struct {
		name string
		has  func(parley.Store) bool
	}{
		{"parley.MultiSender", implements[parley.MultiSender]},
		{"parley.AsyncSender", implements[parley.AsyncSender]},
		{"parley.BulkReader", implements[parley.BulkReader]},
		{"parley.Searcher", implements[parley.Searcher]},
		{"parley.Receipts", implements[parley.Receipts]},
		{"parley.Profiles", implements[parley.Profiles]},
		{"parley.Consenter", implements[parley.Consenter]},
		{"parley.CommitPublisher", implements[parley.CommitPublisher]},
		{"parley.ShardedLog", implements[parley.ShardedLog]},
		{"parley.UserChangeLog", implements[parley.UserChangeLog]},
		{"WriteErr() error", implements[interface{ WriteErr() error }]},
	} {
		if !o.has(s) {
			missing = append(missing, o.name)
		}
	}
	return missing
}

// implements reports whether s is a T.
func implements[T any](s parley.Store) bool {
	_, ok := s.(T)
	return ok
}

// optional returns s as the optional interface T, failing the test when s
// lacks it (see missingOptional).
func optional[T any](t *testing.T, s parley.Store) T {
	t.Helper()
	v, ok := s.(T)
	if !ok {
		t.Fatalf("%T is no %T, which the server looks for", s, (*T)(nil))
	}
	return v
}

// Helpers shared by the tests.

func ctx(t *testing.T) context.Context { return t.Context() }

// wantCode fails unless err carries code ("" for no error).
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := parley.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func must[T any](t *testing.T, what string) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

var userCount atomic.Int64

// newUser registers a user with a unique name starting with prefix.
func newUser(t *testing.T, s parley.Store, prefix string) parley.User {
	t.Helper()
	name := fmt.Sprintf("%s%d", prefix, userCount.Add(1))
	u, err := s.CreateUser(ctx(t), name, []byte("hash-"+name))
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	return u
}

func newGroup(t *testing.T, s parley.Store, creator parley.User, title string, members ...parley.User) parley.Conversation {
	t.Helper()
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	c, _, err := s.CreateGroup(ctx(t), creator.ID, title, ids)
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	return c
}

// newDirect opens (or finds) the direct conversation from from to to.
func newDirect(t *testing.T, s parley.Store, from, to parley.User) parley.Conversation {
	t.Helper()
	c, _, err := s.CreateDirect(ctx(t), from.ID, to.ID)
	if err != nil {
		t.Fatalf("CreateDirect: %v", err)
	}
	return c
}

var clientCount atomic.Int64

func clientID() string { return fmt.Sprintf("client-%d", clientCount.Add(1)) }

// send sends a text message with a fresh client id.
func send(t *testing.T, s parley.Store, convID string, from parley.User, text string) parley.Message {
	t.Helper()
	m, _, err := s.SendMessage(ctx(t), parley.NewMessage{
		ConversationID: convID, SenderID: from.ID, ClientID: clientID(), Type: parley.Text, Text: text,
	})
	if err != nil {
		t.Fatalf("SendMessage(%q): %v", text, err)
	}
	return m
}

// oneEvent fails unless events holds exactly one event of type typ.
func oneEvent(t *testing.T, what string, events []parley.Event, typ parley.EventType) parley.Event {
	t.Helper()
	if len(events) != 1 || events[0].Type != typ {
		t.Fatalf("%s: events %+v, want one %s", what, events, typ)
	}
	if events[0].Pos <= 0 {
		t.Fatalf("%s: event has position %d", what, events[0].Pos)
	}
	return events[0]
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// field returns f of every x in xs.
func field[T, F any](xs []T, f func(T) F) []F {
	out := make([]F, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

func ids(users ...parley.User) []string {
	return field(users, func(u parley.User) string { return u.ID })
}

func memberIDs(c parley.Conversation) []string {
	return field(c.Members, func(m parley.Member) string { return m.UserID })
}

func texts(ms []parley.Message) []string {
	return field(ms, func(m parley.Message) string { return m.Text })
}

func seqs(ms []parley.Message) []int64 {
	return field(ms, func(m parley.Message) int64 { return m.Seq })
}

// allEvents reads the whole log through Events, page by page.
func allEvents(t *testing.T, s parley.Store) []parley.Event {
	t.Helper()
	return pageEvents(t, func(after int64) ([]parley.Event, error) { return s.Events(ctx(t), after, 1000) })
}

// allEventsFor reads everything userID receives through EventsFor.
func allEventsFor(t *testing.T, s parley.Store, userID string) []parley.Event {
	t.Helper()
	return pageEventsFor(t, func(after int64) (parley.EventsPage, error) { return s.EventsFor(ctx(t), userID, after, 1000) })
}

// pageEventsFor reads a user's events page by page, each after the last
// one's Next, until a page that is empty and says it reached the end
// (Through 0).
func pageEventsFor(t *testing.T, page func(after int64) (parley.EventsPage, error)) []parley.Event {
	t.Helper()
	var all []parley.Event
	var after int64
	for {
		p, err := page(after)
		if err != nil {
			t.Fatalf("reading events after %d: %v", after, err)
		}
		for _, e := range p.Events {
			if e.Pos <= after {
				t.Fatalf("event at %d after cursor %d", e.Pos, after)
			}
			after = e.Pos
		}
		if p.Through != 0 && p.Through < after {
			t.Fatalf("through %d before the page's last event %d", p.Through, after)
		}
		if len(p.Events) == 0 && p.Through == 0 {
			return all
		}
		all = append(all, p.Events...)
		after = p.Next(after)
	}
}

func pageEvents(t *testing.T, page func(after int64) ([]parley.Event, error)) []parley.Event {
	t.Helper()
	var all []parley.Event
	var after int64
	for {
		events, err := page(after)
		if err != nil {
			t.Fatalf("reading events after %d: %v", after, err)
		}
		if len(events) == 0 {
			return all
		}
		for _, e := range events {
			if e.Pos <= after {
				t.Fatalf("event at %d after cursor %d", e.Pos, after)
			}
			after = e.Pos
		}
		all = append(all, events...)
	}
}

func isNotFound(err error) bool {
	return errors.Is(err, parley.ErrNotFound) || parley.ErrorCode(err) == parley.ENOTFOUND
}
