// Package protocol defines Parley's WebSocket frames (protocol v1, and v2:
// the same frames with a resume cursor per shard, see Version2), shared by
// the server, the Go SDK and the load tool. docs/protocol.md is the
// human-readable contract and must match this file exactly.
//
// Every frame is one JSON object in one WebSocket text message. A client
// sends Requests; the server sends Frames.
package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

// Path is where the WebSocket endpoint lives.
const Path = "/v1/ws"

// Version is protocol 1: a client resumes from one position
// (Hello.ResumeFrom). A server whose log has more than one shard refuses
// it; Version2 works everywhere.
const Version = 1

// Heartbeat defaults. The client sends a ping every HeartbeatInterval; the
// server answers each with a pong. Either side that hears nothing from the
// other for HeartbeatTimeout treats the link as dead: the server closes
// with CloseHeartbeatTimeout, the client reconnects. The server states the
// values it uses in the welcome frame; clients use those.
const (
	HeartbeatInterval = 4 * time.Second
	HeartbeatTimeout  = 9 * time.Second
	// HelloTimeout is how long the server waits for the hello frame.
	HelloTimeout = 5 * time.Second
)

// Client ops.
const (
	OpHello              = "hello"
	OpPing               = "ping"
	OpSend               = "send"
	OpHistory            = "history"
	OpDelete             = "delete"
	OpRead               = "read"
	OpTyping             = "typing"
	OpConversations      = "conversations"
	OpConversation       = "conversation"
	OpCreateDirect       = "create_direct"
	OpCreateGroup        = "create_group"
	OpUpdateConversation = "update_conversation"
	OpPresence           = "presence"
	OpEdit               = "edit"
	OpReact              = "react"
	OpSetFlags           = "set_flags"
	OpSearch             = "search"
	OpMentions           = "mentions"
	OpDelivered          = "delivered"
	OpSetProfile         = "set_profile"
)

// Server frame types.
const (
	TypeWelcome     = "welcome"     // answer to hello
	TypeReply       = "reply"       // answer to a request, same id
	TypeError       = "error"       // a request failed (id set) or a frame could not be read (no id)
	TypeEvent       = "event"       // an event; durable ones carry pos
	TypePong        = "pong"        // answer to ping, same id
	TypeResumed     = "resumed"     // the replay asked for in hello is complete
	TypeResync      = "resync"      // too far behind to replay: refetch state
	TypeThrottled   = "throttled"   // a feature is throttled until a time
	TypeUnthrottled = "unthrottled" // a throttled feature works again
	TypeGoAway      = "goaway"      // the server is going away: reconnect after a delay
)

// Close codes. Codes from 4000 to 4099 mean "reconnect (with backoff) and
// resume"; codes from 4100 to 4199 mean "do not reconnect until the cause is
// fixed". ShouldReconnect is the table every client uses.
const (
	CloseNormal           = 1000 // the client asked to close
	CloseGoingAway        = 1001 // a browser tab closing, or a proxy going away
	CloseTooLarge         = 1009 // a frame over MaxFrameBytes (do not reconnect blindly)
	CloseReconnect        = 4000 // generic: reconnect and resume
	CloseSlowConsumer     = 4001 // the client fell too far behind on durable events
	CloseHeartbeatTimeout = 4002 // nothing heard from the client within the heartbeat timeout
	CloseShutdown         = 4003 // the server is restarting; wait the goaway delay
	CloseHelloTimeout     = 4004 // no hello in time: a half-open link or a stalled node looks the same, so reconnect
	CloseUnauthorized     = 4100 // missing, forged or expired token: get a new one first
	CloseProtocolError    = 4101 // the client broke the protocol (binary frame, malformed hello...)
	// CloseAuthRevoked: the user was banned (server API), their access
	// revoked; their tokens no longer work. Final: do not reconnect.
	CloseAuthRevoked = 4102
	// CloseTooManyConnections: the user opened more connections on the
	// node than its per-user cap (default 20) and this, their oldest, was
	// closed. Not reconnected automatically: the app decides (another tab
	// or device is probably in use).
	CloseTooManyConnections = 4103
)

// ShouldReconnect reports whether a client should reconnect after the
// server closed with this code.
func ShouldReconnect(code int) bool {
	switch {
	case code >= 4100 && code <= 4199:
		return false
	case code == CloseTooLarge, code == 1002, code == 1003, code == 1007, code == 1008:
		return false
	}
	return true
}

// Request is a frame from client to server. ID is the client's request id
// (at most 64 bytes; DecodeRequest cuts a longer one to that for its error); the reply or error carries it back. Data holds the
// op's fields.
type Request struct {
	Op   string          `json:"op"`
	ID   string          `json:"id,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
}

// Hello is the first frame of every connection (OpHello). ResumeFrom, when
// set, is the last position the client saw: the server replays every event
// after it, then sends TypeResumed (or TypeResync when more than
// parley.ResumeLimit events were missed).
//
// Batch, when true, lets the server put several frames into one WebSocket
// text message, separated by "\n" (a frame's JSON never holds a raw
// newline); the client splits every message on "\n". Without it every
// message holds exactly one frame.
//
// Protocol is the version the client speaks: 0 or 1 for protocol 1, 2 for
// protocol 2 (Version2). With 2 the client resumes with Cursor, not
// ResumeFrom: nil (left out) is a first connection, an empty cursor {}
// a resume from the start of every shard.
type Hello struct {
	Token      string      `json:"token"`
	ResumeFrom *int64      `json:"resume_from,omitempty"`
	Batch      bool        `json:"batch,omitempty"`
	Protocol   int         `json:"protocol,omitempty"`
	Cursor     ShardCursor `json:"cursor,omitzero"`
}

// Send stores a message (OpSend). The reply's data is the stored
// parley.Message.
type Send struct {
	ConversationID string             `json:"conversation_id"`
	ClientID       string             `json:"client_id"`
	Type           parley.MessageType `json:"type,omitempty"` // default "text"
	Text           string             `json:"text,omitempty"`
	AttachmentID   string             `json:"attachment_id,omitempty"`
	// ReplyTo names the message this one replies to (same conversation).
	ReplyTo string `json:"reply_to,omitempty"`
}

// Edit replaces the text of one's own message (OpEdit). The message is
// named by MessageID or by MessageClientID, the client id it was sent
// with; ClientID is the edit's own id, which makes it idempotent. The
// reply's data is the message as edited.
type Edit struct {
	ConversationID  string `json:"conversation_id"`
	MessageID       string `json:"message_id,omitempty"`
	MessageClientID string `json:"message_client_id,omitempty"`
	ClientID        string `json:"client_id"`
	Text            string `json:"text"`
}

// React adds an emoji reaction to a message, or removes it with Remove
// (OpReact). The reply's data is a ReactResult.
type React struct {
	ConversationID string `json:"conversation_id"`
	MessageID      string `json:"message_id"`
	Emoji          string `json:"emoji"`
	Remove         bool   `json:"remove,omitempty"`
}

// ReactResult is the reply to OpReact: the message's reactions as the
// caller sees them now.
type ReactResult struct {
	MessageID string            `json:"message_id"`
	Reactions []parley.Reaction `json:"reactions"`
}

// Search is the data of OpSearch: full-text search over the messages of
// the caller's conversations (all of them, or ConversationID's). Query
// is at most parley.MaxSearchQueryBytes; Cursor is the Next of the
// previous page; Limit 1..parley.MaxSearchLimit (default
// parley.DefaultSearchLimit). The reply's data is a parley.SearchPage.
type Search struct {
	Query          string `json:"query"`
	ConversationID string `json:"conversation_id,omitempty"`
	Cursor         string `json:"cursor,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

// Mentions is the data of OpMentions: the caller's mentions, newest
// first. The reply's data is a parley.SearchPage (without highlights).
type Mentions struct {
	Cursor string `json:"cursor,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// History asks for a page of messages (OpHistory). The reply's data is a
// parley.MessagePage. Before and After are cursors; nil (absent or null
// in JSON) is no cursor, which differs from 0: After 0 asks for the
// oldest messages (every seq is above 0), and Before 0 is refused as
// invalid (no seq is below 1). Cursor makes one.
type History struct {
	ConversationID string `json:"conversation_id"`
	Before         *int64 `json:"before,omitempty"`
	After          *int64 `json:"after,omitempty"`
	Limit          int    `json:"limit,omitempty"`
}

// Cursor returns a pointer to seq, for History's Before and After.
func Cursor(seq int64) *int64 { return &seq }

// Delete turns one's own message into a tombstone (OpDelete). The reply's
// data is the tombstone.
type Delete struct {
	ConversationID string `json:"conversation_id"`
	MessageID      string `json:"message_id"`
}

// Read marks messages read up to Seq (OpRead). The reply's data is a
// ReadResult.
type Read struct {
	ConversationID string `json:"conversation_id"`
	Seq            int64  `json:"seq"`
}

// ReadResult is the reply to OpRead.
type ReadResult struct {
	ConversationID string `json:"conversation_id"`
	ReadSeq        int64  `json:"read_seq"`
}

// Typing starts or stops the typing indicator (OpTyping).
type Typing struct {
	ConversationID string `json:"conversation_id"`
	Typing         bool   `json:"typing"`
}

// ConversationRef names one conversation (OpConversation).
type ConversationRef struct {
	ConversationID string `json:"conversation_id"`
}

// Conversations asks for a page of the user's conversations
// (OpConversations), newest activity first: the first page without
// Cursor, the next ones with the Next of the page before.
type Conversations struct {
	// Cursor is an opaque string, the Next of the previous page.
	Cursor string `json:"cursor,omitempty"`
	// Limit caps the page's conversations (1..1000; 0: as many as fit
	// the reply's byte cap).
	Limit int `json:"limit,omitempty"`
}

// ConversationList is the reply to OpConversations: a page cut to the
// reply's byte cap. HasMore says more follow, to ask for with Next as the
// cursor; an older server sends neither (the whole list).
type ConversationList struct {
	Conversations []parley.Conversation `json:"conversations"`
	HasMore       bool                  `json:"has_more"`
	Next          string                `json:"next,omitempty"`
}

// CreateDirect opens the direct conversation with a user named by id or by
// username (OpCreateDirect). The reply's data is the parley.Conversation.
type CreateDirect struct {
	UserID   string `json:"user_id,omitempty"`
	Username string `json:"username,omitempty"`
}

// CreateGroup creates a group (OpCreateGroup).
type CreateGroup struct {
	Title     string   `json:"title"`
	MemberIDs []string `json:"member_ids"`
}

// UpdateConversation renames a group, changes its members or their roles
// (OpUpdateConversation). Leaving is removing oneself. See
// parley.Store.UpdateConversation for who may do what.
type UpdateConversation struct {
	ConversationID string   `json:"conversation_id"`
	Title          *string  `json:"title,omitempty"`
	Add            []string `json:"add,omitempty"`
	Remove         []string `json:"remove,omitempty"`
	Promote        []string `json:"promote,omitempty"`
	Demote         []string `json:"demote,omitempty"`
}

// SetFlags mutes, unmutes, archives or unarchives a conversation for the
// caller alone, on all their devices (OpSetFlags). A nil field changes
// nothing. The reply's data is the parley.Conversation as the caller sees
// it (muted, archived).
type SetFlags struct {
	ConversationID string `json:"conversation_id"`
	Muted          *bool  `json:"muted,omitempty"`
	Archived       *bool  `json:"archived,omitempty"`
}

// PresenceList is the reply to OpPresence: the ids of the caller's
// contacts who are online now, at most parley.MaxContacts
// (docs/protocol.md, section 6, Contacts limit).
type PresenceList struct {
	Online []string `json:"online"`
}

// Frame is a frame from server to client. Which fields are set depends on
// Type: Data for welcome, reply, event, resumed, resync, throttled,
// unthrottled and goaway; Error for error.
type Frame struct {
	Type  string          `json:"type"`
	ID    string          `json:"id,omitempty"`
	Data  json.RawMessage `json:"data,omitempty"`
	Error *ErrorBody      `json:"error,omitempty"`
}

// ErrorBody is the payload of an error frame and of an HTTP error response.
type ErrorBody struct {
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

// Welcome is the data of the welcome frame, the answer to hello.
type Welcome struct {
	User      parley.User `json:"user"`
	SessionID string      `json:"session_id"`
	// Head is the newest position when the connection started. A client
	// with no position yet starts from it.
	Head                int64 `json:"head"`
	HeartbeatIntervalMS int64 `json:"heartbeat_interval_ms"`
	HeartbeatTimeoutMS  int64 `json:"heartbeat_timeout_ms"`
	MaxFrameBytes       int   `json:"max_frame_bytes"`
	MaxTextRunes        int   `json:"max_text_runes"`
	ResumeLimit         int   `json:"resume_limit"`
	// Online lists the contacts online now, as PresenceList does (at
	// most parley.MaxContacts).
	Online []string `json:"online"`
	// Protocol 2 only (left out for protocol 1). Cursor holds the heads
	// of every shard when the connection started (sparse); a client with
	// no cursor yet starts from it. Shards is the log's shard count.
	Cursor ShardCursor `json:"cursor,omitzero"`
	Shards int         `json:"shards,omitempty"`
}

// Resumed is the data of the resumed frame: Count events after From were
// replayed, the last at To.
//
// Protocol 2: From and To are shard 0's; Cursor is the client's cursor
// after the replay (the welcome's heads, or the client's own entry where
// that is further) and Shards the log's shard count.
type Resumed struct {
	From   int64       `json:"from"`
	To     int64       `json:"to"`
	Count  int         `json:"count"`
	Cursor ShardCursor `json:"cursor,omitzero"`
	Shards int         `json:"shards,omitempty"`
}

// Resync is the data of the resync frame: the server cannot replay what
// the client missed. The client must refetch conversations and messages;
// live events continue after Head. Cause says why, and From with Head
// bound the events in question:
//   - ResyncResumeLimit: more events were missed than the server replays;
//     the server replayed them up to From, and the events in (From, Head]
//     were not replayed. Head is at or beyond the client's position.
//   - ResyncLogLost: the client's position (From, its resume_from) is
//     beyond the server's durable log, whose last position is Head: the
//     events in (Head, From] are gone (data wiped or restored from an
//     older copy) and positions after Head will be given again. This is
//     the only answer that moves a client's position backwards.
//
// A node that has merely not yet delivered the client's position never
// answers resync: it replays from the store (docs/protocol.md section 3).
//
// Protocol 2: Shard is the shard in question, and From and Head bound the
// range in question in that shard. Cursor holds the heads live events
// continue after (the welcome's). Lost lists every shard whose log was
// lost (ResyncLogLost only): for those the client's entry goes back to
// Cursor's (0 when left out); every other entry only moves forward.
type Resync struct {
	Head   int64       `json:"head"`
	Reason string      `json:"reason"`
	Cause  string      `json:"cause"`
	From   int64       `json:"from"`
	Shard  int         `json:"shard,omitempty"`
	Cursor ShardCursor `json:"cursor,omitzero"`
	Lost   []int       `json:"lost,omitempty"`
	Shards int         `json:"shards,omitempty"`
}

// Resync causes (Resync.Cause).
const (
	ResyncResumeLimit = "resume_limit"
	ResyncLogLost     = "log_lost"
)

// Throttled is the data of the throttled frame: Feature ("typing",
// "presence", "messages") is switched off for this connection until Until.
// The server sends unthrottled when it lifts it; a client may also treat it
// as lifted at Until.
type Throttled struct {
	Feature string    `json:"feature"`
	Until   time.Time `json:"until"`
}

// Unthrottled is the data of the unthrottled frame.
type Unthrottled struct {
	Feature string `json:"feature"`
}

// GoAway is the data of the goaway frame: the server is shutting down and
// will close the connection with CloseShutdown. Clients wait
// ReconnectAfterMS (jittered by the server per connection, so a restart
// does not cause a storm) before reconnecting.
type GoAway struct {
	Reason           string `json:"reason"`
	ReconnectAfterMS int64  `json:"reconnect_after_ms"`
}

// ErrBinary is returned for a binary WebSocket message: a protocol error.
var ErrBinary = errors.New("protocol: binary frames are not allowed")

// MaxRequestIDLen is the longest request id.
const MaxRequestIDLen = 64

// DecodeRequest parses one client frame. It returns *parley.Error with
// EBADJSON for bytes that are not UTF-8 or not a JSON object, EINVALID for
// a missing op or a bad id, and EUNKNOWNOP for an op it does not know; in
// the EUNKNOWNOP and EINVALID cases the returned Request still carries
// the id so the error can be matched to the request.
func DecodeRequest(b []byte) (Request, error) {
	var r Request
	if !utf8.Valid(b) {
		return r, parley.Errorf(parley.EBADJSON, "frame is not valid UTF-8")
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return r, parley.Errorf(parley.EBADJSON, "frame must be a JSON object")
	}
	if !decodeRequestFast(b, &r) {
		// Into a variable of its own: r given to json.Unmarshal would be
		// on the heap for every request, the fast path's too.
		var slow Request
		if err := json.Unmarshal(b, &slow); err != nil {
			return Request{}, parley.Errorf(parley.EBADJSON, "frame is not valid JSON: %s", jsonErrText(err))
		}
		r = slow
	}
	if len(r.ID) > MaxRequestIDLen {
		// The error carries the id's first bytes, so that a client can
		// still tell which request failed, without echoing an unbounded id.
		r.ID = truncateID(r.ID)
		return r, parley.Errorf(parley.EINVALID, "id is longer than %d bytes", MaxRequestIDLen)
	}
	switch r.Op {
	case "":
		return r, parley.Errorf(parley.EINVALID, "op is required")
	case OpHello, OpPing, OpSend, OpHistory, OpDelete, OpRead, OpTyping, OpConversations,
		OpConversation, OpCreateDirect, OpCreateGroup, OpUpdateConversation, OpPresence, OpEdit, OpReact, OpSetFlags,
		OpDelivered, OpSetProfile, OpSearch, OpMentions:
		return r, nil
	}
	if consentOp(r.Op) {
		return r, nil
	}
	return r, parley.Errorf(parley.EUNKNOWNOP, "unknown op %q", r.Op)
}

// truncateID returns id's first MaxRequestIDLen bytes, or fewer so as not
// to cut a UTF-8 character (the id is valid UTF-8: the frame was).
func truncateID(id string) string {
	n := MaxRequestIDLen
	for n > 0 && !utf8.RuneStart(id[n]) {
		n--
	}
	return id[:n]
}

// DecodeData parses a request's data into v. Missing data decodes as {}.
// Wrong types give EINVALID naming the field.
func DecodeData(data json.RawMessage, v any) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return parley.Errorf(parley.EINVALID, "data: %s", jsonErrText(err))
	}
	return nil
}

// jsonErrText turns encoding/json errors into a short message that names
// the field, without Go type names leaking to clients.
func jsonErrText(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field != "" {
			return fmt.Sprintf("field %q has the wrong type (got %s)", te.Field, te.Value)
		}
		return fmt.Sprintf("wrong type (got %s)", te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "malformed JSON"
}
