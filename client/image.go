package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/parleychat/parley"
)

// MaxImageBytes bounds what SendImage reads from its reader. The server has
// its own limit (10 MiB by default) and refuses larger images with
// too_large.
const MaxImageBytes = 32 << 20

// ImageOption configures SendImage, SendFile and SendFileReader.
type ImageOption func(*imageOptions)

type imageOptions struct{ caption string }

// WithCaption sets an image or file message's caption (at most
// parley.MaxTextRunes code points).
func WithCaption(text string) ImageOption { return func(o *imageOptions) { o.caption = text } }

// SendImage queues an image message and returns at once with the
// optimistic message (status Sending; Image() holds the bytes for a local
// preview). The outbox uploads the image (POST /v1/uploads), then sends a
// message of type image with the attachment id, in Send order with the
// other messages. The client id is fixed before the upload, so a link lost
// during the upload or the send retries on the next connection without a
// second message; once the upload succeeded its attachment id is kept
// (also in a durable outbox), so a retried send does not upload again. The
// server checks the image by content: a file that is not a PNG, JPEG, GIF
// or WebP image, or too large, ends Failed with the server's reason.
// Resend retries a Failed image the same way. SendImage reads r to the end
// (at most MaxImageBytes) before it returns.
func (c *Client) SendImage(ctx context.Context, conversationID string, r io.Reader, opts ...ImageOption) (*Message, error) {
	caption, data, err := readUpload(conversationID, r, MaxImageBytes, "image", opts)
	if err != nil {
		return nil, err
	}
	return c.queue(ctx, &Message{conversationID: conversationID, typ: parley.Image, text: caption, image: data})
}

// readUpload checks an upload's conversation id and caption (from opts)
// and reads r to the end, at most max bytes; what names the upload in
// errors ("image", "file").
func readUpload(conversationID string, r io.Reader, max int64, what string, opts []ImageOption) (caption string, data []byte, err error) {
	var o imageOptions
	for _, f := range opts {
		f(&o)
	}
	if conversationID == "" {
		return "", nil, parley.Errorf(parley.EINVALID, "conversation id is required")
	}
	if !utf8.ValidString(o.caption) {
		return "", nil, parley.Errorf(parley.EINVALID, "caption is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(o.caption); n > parley.MaxTextRunes {
		return "", nil, parley.Errorf(parley.EINVALID, "caption is %d characters; the most is %d", n, parley.MaxTextRunes)
	}
	data, err = io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return "", nil, fmt.Errorf("client: reading the %s: %w", what, err)
	}
	switch {
	case len(data) == 0:
		return "", nil, parley.Errorf(parley.EINVALID, "the %s is empty", what)
	case int64(len(data)) > max:
		return "", nil, parley.Errorf(parley.ETOOLARGE, "the %s is over %d bytes", what, max)
	}
	return o.caption, data, nil
}

// uploadURL is the server's upload endpoint, from the WebSocket URL.
func (c *Client) uploadURL() string {
	u, _ := httpURL(c.wsURL, "/v1/uploads") // c.wsURL passed wsURL in New
	return u
}

// upload sends m's image or file to the server as cn's user (uploadToken)
// and records the attachment id
// (in the outbox file too). ok is false when the message failed (the
// server refused the image) or the upload must be retried on the next
// connection, or a welcome of another user took m out of the queue
// meanwhile (adopt: it is not this client's to send); alive is false
// when ctx ended. Only the pump calls it.
func (o *outbox) upload(ctx context.Context, cn *wsConn, m *Message) (ok, alive bool) {
	for {
		token, err := o.c.uploadToken(ctx, cn)
		var att parley.Attachment
		switch {
		case err != nil:
		case m.typ == parley.File:
			att, err = o.c.postFile(ctx, token, m.fileName, m.image)
		default:
			att, err = o.c.postImage(ctx, token, m.image)
		}
		if ctx.Err() != nil {
			return false, false
		}
		var perr *parley.Error
		switch {
		case err == nil:
			// Under o.mu, as adopt takes messages out: a message a
			// welcome of another user took out while it was uploaded
			// keeps no attachment. The upload may have gone with that
			// user's token (the token source's by then), and its owner's
			// next client would send an attachment not theirs, refused.
			o.mu.Lock()
			if o.byID[m.clientID] != m {
				o.mu.Unlock()
				return false, true // not this connection's to send
			}
			m.mu.Lock()
			m.attachmentID = att.ID
			m.mu.Unlock()
			if o.db != nil {
				uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				if _, derr := o.db.ExecContext(uctx, `UPDATE outbox SET attachment_id = ? WHERE client_id = ?`, att.ID, m.clientID); derr != nil {
					// A restart would upload again: a spare attachment, not
					// a second message.
					o.c.log.Warn("client: outbox file update failed", "err", derr)
				}
				cancel()
			}
			o.mu.Unlock()
			return true, true
		case errors.As(err, &perr) && (perr.Code == parley.ERATELIMITED || perr.Code == parley.EUNAVAILABLE || perr.Code == parley.EINTERNAL):
			d := perr.RetryAfter
			if d <= 0 {
				d = time.Second
			}
			if !o.pause(ctx, d) {
				return false, false
			}
		case errors.As(err, &perr) && perr.Code != parley.EUNAUTHORIZED:
			if !o.queued(m) {
				// Refused to another user, maybe (see above): the
				// file keeps it for its owner's client.
				return false, true
			}
			o.finish(m, parley.Message{}, err)
			return true, true
		default:
			// The link (or the token) failed: wait for the next
			// connection, or a second on this one, then try again.
			o.c.log.Debug("client: image upload failed; retrying", "err", err)
			o.c.mu.Lock()
			lost, gone := o.c.lost, o.c.conn != cn
			o.c.mu.Unlock()
			if gone { // lost is the next connection's: serve starts over on it
				return false, true
			}
			t := time.NewTimer(time.Second)
			select {
			case <-lost:
				t.Stop()
				return false, true
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return false, false
			}
		}
	}
}

// pause waits d; false when ctx ended first.
func (o *outbox) pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// postImage uploads one image. Errors the server answered with are
// *parley.Error with its code and message.
func (c *Client) postImage(ctx context.Context, token string, data []byte) (parley.Attachment, error) {
	return c.postUpload(ctx, token, c.uploadURL(), data)
}

// uploadToken is the token to upload with on cn's behalf: the token
// source's, once it is known to be cn's user's (the hello's token, or
// one GET /v1/me says is theirs: a token source that refreshes costs one
// request per new token). A source that switched users ahead of the
// next welcome would have the file uploaded as the new user, recorded
// on the old user's message (adopt had not taken it out yet) and sent,
// by their next client or on cn, with an attachment not theirs: refused,
// the message lost. Another user's token is a plain error: the upload
// waits for the next connection, or a second.
func (c *Client) uploadToken(ctx context.Context, cn *wsConn) (string, error) {
	token, err := c.opts.tokens(ctx)
	if err != nil {
		return "", fmt.Errorf("client: token source: %w", err)
	}
	if token == cn.token {
		return token, nil
	}
	u, _ := httpURL(c.wsURL, "/v1/me") // c.wsURL passed wsURL in New
	rctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	var me parley.User
	if err := doJSON(c.http, req, &me); err != nil {
		var perr *parley.Error
		if errors.As(err, &perr) && (perr.Code == parley.ERATELIMITED || perr.Code == parley.EUNAVAILABLE) {
			return "", err // waited out as an upload's
		}
		// Not the upload's refusal, which would fail the message: the
		// upload tries again on the next connection, or in a second.
		return "", fmt.Errorf("client: GET /v1/me: %v", err)
	}
	if me.ID != cn.user {
		return "", fmt.Errorf("client: the token source's token is %s's, the connection %s's: the upload waits for the next connection", me.ID, cn.user)
	}
	return token, nil
}
