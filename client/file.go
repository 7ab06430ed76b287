package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/parleychat/parley"
)

// MaxFileBytes bounds what SendFile reads. The server has its own limit
// (25 MiB by default) and refuses larger files with too_large.
const MaxFileBytes = 64 << 20

// SendFile queues a file message with the file at path, named by its base
// name; see SendFileReader. The file is read before SendFile returns.
func (c *Client) SendFile(ctx context.Context, conversationID, path string, opts ...ImageOption) (*Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	defer f.Close()
	return c.SendFileReader(ctx, conversationID, filepath.Base(path), f, opts...)
}

// SendFileReader queues a file message of any type and returns at once
// with the optimistic message (status Sending; FileName and Image hold
// the name and bytes for the app to show). The outbox uploads the file
// (POST /v1/files), then sends a message of type file with the attachment
// id, in Send order with the other messages, with SendImage's guarantees:
// one message however often the link fails, no second upload once one
// succeeded. The server keeps name only for display, sanitised (see
// docs/protocol.md), types the file by its content, and refuses a file
// over its limit (too_large) or over the user's quota; the message then
// ends Failed. WithCaption sets a caption. SendFileReader reads r to the
// end (at most MaxFileBytes) before it returns.
func (c *Client) SendFileReader(ctx context.Context, conversationID, name string, r io.Reader, opts ...ImageOption) (*Message, error) {
	caption, data, err := readUpload(conversationID, r, MaxFileBytes, "file", opts)
	if err != nil {
		return nil, err
	}
	return c.queue(ctx, &Message{conversationID: conversationID, typ: parley.File, text: caption, image: data, fileName: name})
}

// FileName is the name a file message was given (SendFile, SendFileReader)
// as the app gave it; "" for other messages. Once Sent,
// Stored().Attachment.Name is the name the server keeps.
func (m *Message) FileName() string { return m.fileName }

// postFile uploads one file. Errors the server answered with are
// *parley.Error with its code and message.
func (c *Client) postFile(ctx context.Context, token, name string, data []byte) (parley.Attachment, error) {
	u, _ := httpURL(c.wsURL, "/v1/files") // c.wsURL passed wsURL in New
	return c.postUpload(ctx, token, u+"?"+url.Values{"name": {name}}.Encode(), data)
}

// uploadContinueWait is how long an upload waits for the server's
// 100 Continue before it sends its body anyway (a server or proxy that
// ignores Expect). Longer than the server's wait for a receiving slot
// (--upload-decode-wait, 5 s by default), so that a node with no slot free
// refuses the upload before any byte of the body is sent.
const uploadContinueWait = 10 * time.Second

// postUpload POSTs data as the raw body of an upload to u with token and
// decodes the attachment the server made. It sends Expect: 100-continue: a server
// with no receiving slot free (or over the user's rate, or for a body over
// its bound) answers before it reads the body and closes the connection,
// and a client already sending megabytes could see the connection reset
// instead of the answer and its Retry-After. With Expect the body waits
// for the server's go-ahead, and the refusal arrives whole.
func (c *Client) postUpload(ctx context.Context, token, u string, data []byte) (parley.Attachment, error) {
	rctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(data))
	if err != nil {
		return parley.Attachment{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Expect", "100-continue")
	var att parley.Attachment
	if err := doJSON(c.http, req, &att); err != nil {
		return parley.Attachment{}, err
	}
	if att.ID == "" {
		return parley.Attachment{}, fmt.Errorf("client: upload: the reply has no attachment id")
	}
	return att, nil
}

// Download writes the content of an attachment (an image's or a file
// message's, GET /v1/attachments/{id}) to w and returns how many bytes it
// wrote. It needs no connection, only the server (after Close it returns
// ErrClosed). Errors the server
// answered with (not_found for an attachment of a conversation the user
// is not in, or one that is gone) are *parley.Error.
//
// ctx bounds the whole download, which a large file on a slow link may
// need long for; whatever ctx says, a server that sends nothing for
// DefaultRequestTimeout (no answer, or a body that stops) fails it with
// an error that wraps context.DeadlineExceeded.
//
// It writes at most MaxFileBytes: a longer answer (a server that keeps
// sending) fails with ETOOLARGE after MaxFileBytes were written, and one
// whose Content-Length says more fails before any byte is read. When the
// app has the attachment (a message's), DownloadAttachment bounds the
// download by its size instead.
func (c *Client) Download(ctx context.Context, attachmentID string, w io.Writer) (int64, error) {
	return c.download(ctx, attachmentID, c.opts.fileBytes, w)
}

// DownloadAttachment is Download of att.ID, bounded by att.Size (the
// stored content's size the server gave with the message) when that is
// known (over 0) and never by more than MaxFileBytes: an answer longer
// than that fails with ETOOLARGE after the bound was written, one whose
// Content-Length says more before any byte is read.
func (c *Client) DownloadAttachment(ctx context.Context, att parley.Attachment, w io.Writer) (int64, error) {
	limit := c.opts.fileBytes
	if att.Size > 0 {
		limit = min(limit, att.Size)
	}
	return c.download(ctx, att.ID, limit, w)
}

// download is Download with a bound of limit bytes.
func (c *Client) download(ctx context.Context, attachmentID string, limit int64, w io.Writer) (int64, error) {
	if c.life.Err() != nil { // closed: as every call after Close
		return 0, ErrClosed
	}
	token, err := c.opts.tokens(ctx)
	if err != nil {
		return 0, fmt.Errorf("client: token source: %w", err)
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	idle := c.opts.requestTimeout
	stalled := fmt.Errorf("no byte from the server in %v: %w", idle, context.DeadlineExceeded)
	stall := time.AfterFunc(idle, func() { stop(stalled) })
	defer stall.Stop()
	u, _ := httpURL(c.wsURL, "/v1/attachments/"+url.PathEscape(attachmentID)) // c.wsURL passed wsURL in New
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	fail := func(err error) error {
		if context.Cause(ctx) == stalled {
			err = stalled
		}
		return fmt.Errorf("client: GET %s: %w", req.URL.Path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fail(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return 0, doJSONError(req, resp)
	}
	tooLarge := func() error {
		return parley.Errorf(parley.ETOOLARGE, "client: GET %s: the answer is over %d bytes (the attachment's size, at most MaxFileBytes)", req.URL.Path, limit)
	}
	if resp.ContentLength > limit {
		return 0, tooLarge()
	}
	body := progressReader{resp.Body, func() { stall.Reset(idle) }}
	n, err := io.Copy(w, io.LimitReader(body, limit))
	if err != nil {
		return n, fail(err)
	}
	// The bound reached: one byte more (a chunked answer that goes on)
	// fails the download rather than writing without end.
	if n == limit {
		var one [1]byte
		if m, err := io.ReadFull(body, one[:]); m > 0 {
			return n, tooLarge()
		} else if err != io.EOF {
			return n, fail(err)
		}
	}
	return n, nil
}

// progressReader calls progress after every read that returned bytes.
type progressReader struct {
	r        io.Reader
	progress func()
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.progress()
	}
	return n, err
}
