package storetest

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/parleychat/parley"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// bare is a Store and nothing more: the suite must refuse it.
type bare struct{ parley.Store }

// full has every optional interface (never called: the check only
// asserts types).
type full struct{ parley.Store }

func (full) SendMessages(context.Context, []parley.NewMessage, func(int, parley.Message, []parley.Event, error)) {
}
func (full) UsersOf(context.Context, []string) ([]parley.User, error)          { return nil, nil }
func (full) ContactsOf(context.Context, []string) (map[string][]string, error) { return nil, nil }
func (full) WriteErr() error                                                   { return nil }
func (full) MarkDelivered(context.Context, string, []parley.DeliveredMark) ([]parley.DeliveredMark, []parley.Event, error) {
	return nil, nil, nil
}
func (full) SetProfile(context.Context, string, parley.ProfileChange) (parley.User, []parley.Event, error) {
	return parley.User{}, nil, nil
}
func (full) Search(context.Context, string, parley.SearchQuery) (parley.SearchPage, error) {
	return parley.SearchPage{}, nil
}
func (full) Mentions(context.Context, string, parley.MentionQuery) (parley.SearchPage, error) {
	return parley.SearchPage{}, nil
}
func (full) Block(context.Context, string, string) ([]parley.Event, error)   { return nil, nil }
func (full) Unblock(context.Context, string, string) ([]parley.Event, error) { return nil, nil }
func (full) Privacy(context.Context, string) (parley.Privacy, error)         { return parley.Privacy{}, nil }
func (full) SetConsent(context.Context, string, parley.Consent) ([]parley.Event, error) {
	return nil, nil
}
func (full) AnswerRequest(context.Context, string, string, bool) (parley.Conversation, []parley.Event, error) {
	return parley.Conversation{}, nil, nil
}
func (full) Peers(context.Context, string, string) ([]string, error)       { return nil, nil }
func (full) BlocksAmong(context.Context, []string) ([][2]string, error)    { return nil, nil }
func (full) Tie(context.Context, string, string, bool) (parley.Tie, error) { return parley.Tie{}, nil }
func (full) PublishCommits(func([]parley.Event))                           {}
func (full) Shards() int                                                   { return 1 }
func (full) ShardHead(context.Context, int) (int64, error)                 { return 0, nil }
func (full) ShardEvents(context.Context, int, int64, int) ([]parley.Event, error) {
	return nil, nil
}
func (full) ShardEventsFor(context.Context, string, int, int64, int) (parley.EventsPage, error) {
	return parley.EventsPage{}, nil
}
func (full) SendMessagesAsync([]parley.NewMessage, *atomic.Bool, func(int, parley.Message, []parley.Event, error)) {
}
func (full) UserChangeMark(context.Context) (int64, error) { return 0, nil }
func (full) UserChangesAfter(context.Context, int64, int) ([]parley.LoggedUserChange, error) {
	return nil, nil
}

// TestMissingOptional: a store without the optional interfaces fails the
// suite's Optional test (it is not skipped), one with them passes.
func TestMissingOptional(t *testing.T) {
	want := []string{"parley.MultiSender", "parley.AsyncSender", "parley.BulkReader", "parley.Searcher", "parley.Receipts",
		"parley.Profiles", "parley.Consenter", "parley.CommitPublisher", "parley.ShardedLog", "parley.UserChangeLog", "WriteErr() error"}
	if got := missingOptional(bare{}); !slices.Equal(got, want) {
		t.Errorf("missingOptional(bare) = %v, want %v", got, want)
	}
	if got := missingOptional(full{}); len(got) != 0 {
		t.Errorf("missingOptional(full) = %v, want none", got)
	}
}
