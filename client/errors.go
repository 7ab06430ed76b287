package client

import (
	"errors"

	"github.com/parleychat/parley"
)

// Errors a call may match with errors.Is. Each still carries its
// parley error code (EUNAVAILABLE unless its comment says otherwise), so
// code that only looks at codes keeps working.
var (
	// ErrOutboxFull: Send, SendImage or Resend found WithOutboxLimit
	// messages waiting; wait for some to be sent (Flush) and try again.
	ErrOutboxFull = errors.New("client: the outbox is full")
	// ErrDisconnected: the client is Disconnected (before Connect, or it
	// gave up: Status().Err says why), so the call was refused without
	// trying; Reconnect or Connect starts it again. While Reconnecting,
	// Send queues instead and other calls wait for the connection.
	ErrDisconnected = errors.New("client: disconnected")
	// ErrRemoved: Send or SendImage to a conversation this user was
	// removed from or left (Client.IsRemoved). Its parley code is
	// ENOTFOUND, what the server answers a non-member.
	ErrRemoved = errors.New("client: removed from the conversation")
	// ErrOutboxInUse: New was given WithOutboxFile(path) while another
	// client (in another process, or a Client in this one not yet
	// Closed) holds that file. Two clients on one file would both send
	// (and delete) the same queued messages. Its parley code is
	// ECONFLICT; the message names the file. Close the other client, or
	// give this one another file (or none).
	ErrOutboxInUse = errors.New("client: the outbox file is in use")
	// ErrOutboxOtherUser fails a message of a memory outbox queued as
	// another user than the one the server then welcomed (the token
	// source changed users): it is not sent as someone else's. An outbox
	// file keeps such messages, unsent, for their user's client instead
	// (WithOutboxFile).
	ErrOutboxOtherUser = errors.New("client: the message was queued as another user")
)

// removedError is ErrRemoved with its code and a message for the user.
func removedError() error {
	return coded(ErrRemoved, parley.Errorf(parley.ENOTFOUND, "you are no longer a member of this conversation"))
}

// codedError is a *parley.Error (errors.As and parley.ErrorCode find it)
// that errors.Is also matches against one of the sentinels above.
type codedError struct {
	kind error
	perr *parley.Error
}

func (e *codedError) Error() string   { return e.perr.Error() }
func (e *codedError) Unwrap() []error { return []error{e.kind, e.perr} }

// coded returns perr matched by errors.Is against kind too.
func coded(kind error, perr *parley.Error) error { return &codedError{kind: kind, perr: perr} }
