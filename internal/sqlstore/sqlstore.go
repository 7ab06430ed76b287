// Package sqlstore is the core of Parley's SQL stores: every domain
// operation of parley.Store (its checks, permission rules, events and
// reads) written once, over a small query interface (Querier) and a
// Dialect. The engines, internal/sqlite and internal/postgres, embed a
// *Store in their DB and keep only what is really theirs: connections,
// the group-commit batcher and its tuning, the position lock, the hot
// send path (SQLite's deferred multi-row writes, PostgreSQL's bulk
// statements), the checkpointer and the migrations.
//
// # Adding an operation
//
// Write it here, once: its SQL in queries.go (with $N placeholders, in
// SQL both engines run; the rare part they write differently goes in
// Dialect), a method on *Store that validates its input and then runs
// s.e.Write (a write, in the next batch, inside its own savepoint) or
// s.e.Read / s.e (a read), and its conformance cases in internal/storetest.
// Each engine adds only its migration file. An operation that needs an
// engine's own machinery (a new bulk path) is the exception: say why.
//
// # Choices the contract leaves open
//
//   - Unknown user ids in CreateGroup or UpdateConversation's Add are
//     ENOTFOUND, and nothing is written.
//   - Names are unique by parley.NameKey (users.name_key, migration
//     00003), filled at open for older rows (each engine's fillNameKeys);
//     a lookup by name also matches the name itself (SQLite: without
//     regard to ASCII case; PostgreSQL: lower()).
//   - EnsureUser with a name another user holds is ECONFLICT.
//   - Re-sending a ClientID the sender already used in another
//     conversation is ECONFLICT (SendRule).
//   - Removing a user who is not a member, adding one who is, or renaming
//     to the same title changes nothing and makes no event.
//   - The MaxGroupMembers limit counts the members added by a change
//     before the ones it removes.
//   - Page limits: Messages takes 0 as DefaultPageLimit and clamps to
//     MaxPageLimit; Events and EventsFor need a positive limit and clamp
//     it to ResumeLimit+1. Negative cursors are EINVALID.
package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley"
)

// Row is one row of a query: *sql.Row or pgx.Row.
type Row interface {
	Scan(dest ...any) error
}

// Rows are the rows of a query: pgx.Rows, or *sql.Rows with a Close that
// drops its error (a read's error is Err's).
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// Querier runs statements: a read transaction, the pool outside one, or a
// write batch's transaction (Tx). Queries are the text of this package's
// constants (and dialectSQL's), so an engine may prepare each once and
// find it by its text.
type Querier interface {
	// Exec runs a statement and returns the rows it changed.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	Query(ctx context.Context, query string, args ...any) (Rows, error)
	QueryRow(ctx context.Context, query string, args ...any) Row
}

// Tx is what a write sees inside its batch: the batch transaction (the
// context its methods are given is ignored or not, the engine's choice:
// the core passes context.Background(), since one caller's cancellation
// must not abort the batch), the position counter, and what the engine
// may cache across batches (members and names; the write tells it what it
// changed).
type Tx interface {
	Querier
	// NextPos hands out shard's next position (parley.ShardOf of the
	// event's conversation; 0 for a user's own event). Positions are
	// dense per shard: a write that fails gives its positions back (the
	// engine restores the counters when it rolls the write back).
	NextPos(shard int) int64
	// Audience returns a conversation's current members (none when it
	// does not exist). The slice may be shared: do not change it.
	Audience(conversationID string) ([]string, error)
	// UserName returns a user's name (ENOTFOUND for no such user).
	UserName(userID string) (string, error)
	// MembersChanged and UserRenamed tell the engine what a write
	// changed, before it changes it.
	MembersChanged(conversationID string)
	UserRenamed(userID string)
	// Stored tells the engine that the write stored e (complete: Pos,
	// UserName and Audience set), for its commit hook
	// (parley.CommitPublisher; batchq.Events). Every event a write
	// stores must be told, once it is final.
	Stored(e parley.Event)
}

// Engine is what an engine gives the core.
type Engine interface {
	// Querier runs one-statement reads outside a transaction.
	Querier
	// Write runs fn in the next batch (group commit) and returns after
	// the batch has committed (nil), or with fn's error, or the commit's.
	// fn runs in a savepoint of its own, so a write that fails rolls back
	// alone; it must set every result afresh, since a batch may run
	// twice. If ctx ends before the batcher claims the write, it is
	// dropped and Write returns ctx.Err().
	Write(ctx context.Context, fn func(w Tx) error) error
	// WriteShard is Write for an fn that takes positions in shard alone
	// (a write of one conversation): the engine may run it in a
	// transaction that locks that shard only (PostgreSQL), and fails it
	// if it takes another shard's position. fn may write no position.
	WriteShard(ctx context.Context, shard int, fn func(w Tx) error) error
	// Read runs fn in one read-only transaction: every query sees the
	// same snapshot.
	Read(ctx context.Context, fn func(q Querier) error) error
	// Send stores a validated message: the engine's hot path, which must
	// keep SendRule and AttachmentRule (see parley.Store.SendMessage).
	Send(ctx context.Context, nm parley.NewMessage) (parley.Message, []parley.Event, error)
	// SendMany stores validated messages as parley.MultiSender does,
	// calling done(k, ...) for each nms[k], in order. With async it does
	// not wait, as parley.AsyncSender.SendMessagesAsync (drop is its
	// drop): done runs on the batcher goroutine and ctx is not used
	// (batchq.EnqueueRun); without it drop is not used.
	SendMany(ctx context.Context, async bool, drop *atomic.Bool, nms []parley.NewMessage, done func(k int, m parley.Message, evs []parley.Event, err error))
}

// Dialect is what the engines write differently. An engine's dialect is
// a value with no state; its methods are safe for concurrent use.
type Dialect interface {
	// Name prefixes errors of the database itself ("sqlite: ...").
	Name() string
	// HeadSQL reads the newest committed position of shard $1.
	HeadSQL() string
	// EventsForSQL reads the events of one user's membership windows
	// in one shard (args: user, after, limit, shard, through), those
	// ReplayFilter keeps, up to position through, selecting EventCols.
	EventsForSQL() string
	// ReplayBoundSQL reads where EventsForSQL must stop for its scan to
	// stay bounded (args: user, after, limit, shard, scan): one row, the
	// smallest position at which one of the user's membership windows
	// holds scan events after after with fewer than limit of them kept
	// by ReplayFilter (the scan-th's), or NULL when there is none. A
	// window where limit are kept reads only up to them.
	ReplayBoundSQL() string
	// NameIs is a condition: column holds the name param (SQLite's
	// column compares without regard to ASCII case; PostgreSQL's index
	// is on lower(name)).
	NameIs(column, param string) string
	// InList is a condition: column is one of the ids in param, an
	// argument made by IDs.
	InList(column, param string) string
	// IDs is the argument of InList for ids. At most ListChunk ids go
	// in one.
	IDs(ids []string) (any, error)
	ListChunk() int
	// Time is the argument that stores t in a time column.
	Time(t time.Time) any
	// StringDest, IntDest and TimeDest return the scan destination the
	// driver fills for a nullable column (a time comes out in UTC).
	StringDest(p *NullString) any
	IntDest(p *NullInt64) any
	TimeDest(p *NullTime) any
	// IsNoRows reports whether err is the driver's "no rows".
	IsNoRows(err error) bool

	// Search (search.go). SearchFrom is the FROM of a search with its
	// match condition: it names the messages m, and matches the query
	// argument $2, made by SearchMatch from parley.SearchTerms (the last
	// term a prefix when prefix is set). SearchKey is an integer expression that grows with
	// each message inserted: the results' order (newest first) and
	// cursor. convs, when given, are the only conversations the
	// caller may see (SearchMatch may restrict the index with them; the
	// query restricts the rows by membership anyway).
	SearchFrom() (from, match string)
	SearchKey() string
	SearchMatch(terms, convs []string, prefix bool) string
}

// WriteHealther is what the server's /readyz asks a store besides Head:
// whether its writes fail for a reason of its own (both engines'
// batchers keep a batchq.WriteHealth).
type WriteHealther interface {
	// WriteErr is the last such failure while it lasts, nil when writes
	// work; it has code parley.EUNAVAILABLE and a RetryAfter.
	WriteErr() error
}

// Complete is every interface the server looks for in a store: the
// contract and the optional ones, which a store must implement all the
// same (each engine asserts Complete at compile time, and storetest fails
// a store that lacks one).
type Complete interface {
	parley.Store
	parley.MultiSender
	parley.AsyncSender
	parley.BulkReader
	parley.ConversationPager
	parley.WebhookQueue
	parley.APIKeyStore
	parley.Searcher
	parley.Receipts
	parley.Profiles
	parley.Consenter
	parley.CommitPublisher
	parley.ShardedLog
	WriteHealther
}

// Store implements parley.Store, parley.MultiSender and parley.BulkReader
// over an engine; the engine's DB embeds it and adds Close. It is safe for
// concurrent use.
type Store struct {
	d Dialect
	// e is the engine, its reads behind readGuard.
	e   readGuard
	sql dialectSQL
	// shards is the log's shard count (SetupShards), fixed while open.
	shards int
	// chunked: d is a ChunkedAttachments dialect that says so.
	chunked bool
}

// ChunkedAttachments is a Dialect that may keep an attachment's data in
// rows of AttachmentChunkBytes (the table attachment_chunks: attachment_id,
// n from 0, data), the attachments row's data column empty. An engine
// whose SQL reads a whole value to slice it (SQLite: substr loads the
// blob, and the driver has no incremental blob I/O) says so, so that a
// download reading its attachment a chunk at a time reads each byte once,
// not the whole blob for each chunk.
type ChunkedAttachments interface {
	AttachmentChunks() bool
}

// AttachmentChunkBytes is the size of every chunk row but an
// attachment's last. It is stored: a database's rows were cut at this
// size (SQLite's migration 00024 too), so it never changes.
const AttachmentChunkBytes = 1 << 20

// New returns the store of engine e, whose SQL dialect is d, over a log
// of shards shards (what SetupShards returned).
func New(d Dialect, e Engine, shards int) *Store {
	c, ok := d.(ChunkedAttachments)
	return &Store{d: d, e: readGuard{e}, sql: buildSQL(d), shards: max(shards, 1), chunked: ok && c.AttachmentChunks()}
}

// bg is the context of the statements of a write: the batch's, not the
// caller's (see Tx).
var bg = context.Background()

// internalf wraps a failure of the database itself; callers see EINTERNAL.
func (s *Store) internalf(format string, args ...any) error {
	return fmt.Errorf(s.d.Name()+": "+format, args...)
}

func invalidf(format string, args ...any) error {
	return parley.Errorf(parley.EINVALID, format, args...)
}

// notFound maps "no rows" to nf (usually parley.ErrNotFound) and wraps
// anything else as internal.
func (s *Store) notFound(err error, nf error) error {
	if err == nil {
		return nil
	}
	if s.d.IsNoRows(err) {
		return nf
	}
	return s.internalf("%w", err)
}

// WrapInternal leaves *parley.Error and context errors alone and marks
// anything else (prefixed with name) as a database failure.
func WrapInternal(name string, err error) error {
	if err == nil {
		return nil // before pe, which escapes: no allocation for a nil error
	}
	var pe *parley.Error
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s: %w", name, err)
}

func (s *Store) wrapInternal(err error) error { return WrapInternal(s.d.Name(), err) }

// SendRule is the rule of a send's checks before anything is written:
// the sender must be a member (ENOTFOUND otherwise, so existence does not
// leak), and a ClientID the sender already used (oldConv, the
// conversation of that message; nil when there is none) makes the send a
// resend: of the stored message when in the same conversation (resend,
// no error: return it and no events), ECONFLICT in another.
func SendRule(nm parley.NewMessage, member bool, oldConv *string) (resend bool, err error) {
	switch {
	case !member:
		return false, parley.ErrNotFound
	case oldConv == nil:
		return false, nil
	case *oldConv == nm.ConversationID:
		return true, nil
	}
	return false, parley.Errorf(parley.ECONFLICT, "client_id %q was used for another conversation", nm.ClientID)
}

// AttachmentRule: an image or a file names an upload of the sender's
// (owned) of its kind: an image upload (no name) for an image, a file
// upload (a name) for a file; or the send is EINVALID. A text needs none.
func AttachmentRule(nm parley.NewMessage, owned bool, name string) error {
	switch {
	case !nm.Type.HasAttachment():
		return nil
	case !owned:
		return invalidf("attachment_id does not name an upload of yours")
	case nm.Type == parley.Image && name != "":
		return invalidf("attachment_id names a file upload: send it as type %q", parley.File)
	case nm.Type == parley.File && name == "":
		return invalidf("attachment_id names an image upload: send it as type %q", parley.Image)
	}
	return nil
}

// ReplyRule is the rule of a reply's parent (a send with ReplyTo), checked
// after SendRule and AttachmentRule: row is QReplyParent's row (args:
// nm.ReplyTo, nm.ConversationID), or a row of QReplyParent's columns and
// more, scanned into more. It returns the quote the reply carries, whole
// (as it is read by whoever did not block the parent's sender: see
// SplitQuote), nil for a send that is no reply, and EINVALID when the
// parent is not a message of the conversation or is deleted. Any other
// error is the database's.
func ReplyRule(d Dialect, nm parley.NewMessage, row func() Row, more ...any) (*parley.Quote, error) {
	if nm.ReplyTo == "" {
		return nil, nil
	}
	var (
		q       parley.Quote
		typ     string
		deleted NullTime
	)
	err := row().Scan(append([]any{&q.MessageID, &q.Seq, &q.SenderID, &q.SenderName, &typ, &q.Text, d.TimeDest(&deleted)}, more...)...)
	switch {
	case d.IsNoRows(err):
		return nil, invalidf("reply_to does not name a message of this conversation")
	case err != nil:
		return nil, err
	case deleted.Valid:
		return nil, invalidf("reply_to names a deleted message")
	}
	q.Type = parley.MessageType(typ)
	return &q, nil
}

// SplitQuote takes a new reply m (its quote whole, from ReplyRule) and
// blockers, the users who blocked the sender of the message it replies
// to. When m's sender is one of them, m becomes the message as its
// sender reads it (the quote hidden: parley.Quote.Hide) and SplitQuote
// returns a copy with the whole quote, for the event's other receivers;
// otherwise it returns m. Either way the event's QuoteHidden is its
// audience Among blockers.
func SplitQuote(m *parley.Message, blockers []string) (whole *parley.Message) {
	if m.ReplyTo == nil || !slices.Contains(blockers, m.SenderID) {
		return m
	}
	c := *m
	m.ReplyTo = m.ReplyTo.Hide()
	return &c
}

// ReplyArg is a message's reply_to_id argument: NULL for no reply.
func ReplyArg(m *parley.Message) *string {
	if m.ReplyTo == nil {
		return nil
	}
	return &m.ReplyTo.MessageID
}
