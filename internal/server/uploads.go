package server

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/semaphore"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media"
)

// Image uploads (POST /v1/uploads) and downloads (GET /v1/attachments/{id}
// and /v1/attachments/{id}/thumb).
//
// Downloads need a bearer token of a member of a conversation holding the
// attachment (or its uploader), or a short-lived signed link from
// POST /v1/attachments/{id}/link, which is what an <img src> can use.

// linkTTL is how long a signed attachment link works.
const linkTTL = 5 * time.Minute

// Defaults for UploadLimits.
const (
	DefaultUploadDecodes        = 2
	DefaultUploadDecodeWait     = 5 * time.Second
	DefaultUploadsPerSecond     = 0.2
	DefaultUploadBurst          = 10
	DefaultUploadQuota          = 100 << 20
	DefaultUploadOrphanTTL      = time.Hour
	DefaultDownloadBytes        = 256 << 20
	uploadSweepBatch            = 100
	uploadRetryAfterUnavailable = 2 * time.Second
)

// UploadLimits bounds image and file uploads. Zero fields take their defaults; a
// negative PerSecond or Quota switches that limit off.
type UploadLimits struct {
	// Limits are media's: MaxBytes (default 10 MiB), MaxPixels (40
	// megapixels), ThumbSize (320) and DecodeBudget (64 MiB, the memory
	// one upload's decoding may need; see media.Cost).
	media.Limits
	// Decodes is how many uploads one node decodes at once (default 2),
	// so decoding holds at most Decodes x DecodeBudget. An upload waits
	// up to DecodeWait (default 5 s) for its turn, then gets unavailable
	// (HTTP 503) with Retry-After.
	Decodes    int
	DecodeWait time.Duration
	// PerSecond and Burst limit uploads per user (default 0.2/s, one
	// every 5 s, burst 10): over it, rate_limited (HTTP 429) with
	// Retry-After.
	PerSecond float64
	Burst     int
	// Quota is the bytes a user's stored uploads may take, data and
	// thumbnails, sent or not (default 100 MiB): over it, too_large (HTTP
	// 413) saying how much is used.
	Quota int64
	// OrphanTTL is how long an upload no message holds is kept (default
	// 1 h): the server's janitor deletes older ones every minute, as well
	// as uploads whose messages were all deleted.
	OrphanTTL time.Duration
	// MaxFileBytes is the largest file upload (POST /v1/files, default
	// 25 MiB). Files share PerSecond, Burst, Quota and OrphanTTL with
	// images.
	MaxFileBytes int64
	// Files is how many uploads, images and files together, one node
	// receives at once (default 4): each body is held in memory (a file
	// up to MaxFileBytes, an image up to MaxBytes) until stored, so
	// bodies hold at most Files x MaxFileBytes. An upload waits up to
	// DecodeWait for its turn, before any byte of its body is read, then
	// gets unavailable (HTTP 503) with Retry-After.
	Files int
	// DownloadBytes bounds the attachment bytes one node holds for
	// downloads being served at once (GET /v1/attachments/{id} and
	// /thumb; default 256 MiB). A download reads its attachment from
	// the store a chunk at a time (DownloadChunk, 1 MiB, or the whole
	// attachment where smaller) and holds one chunk until the client
	// has taken it, which a slow or stalled reader makes last up to
	// HTTP.WriteTimeout, and the store's copy of the next while it
	// reads it: two chunks (DownloadHold, 2 MiB). It reserves them
	// before loading a byte (the store tells the size without the
	// bytes, parley.Store.AttachmentInfo): with no room left it waits up
	// to DecodeWait, having loaded nothing, then gets unavailable (HTTP
	// 503) with Retry-After. Below DownloadHold, a download holds all of
	// DownloadBytes, its chunk half of it.
	//
	// One user's downloads hold at most a quarter of it, or
	// DownloadHold where that is more (downloadShare): past that a
	// download of
	// theirs is refused at once, unavailable with Retry-After, so one
	// account's stalled downloads cannot take the node's room from
	// everyone else. A user with no download under way may always start
	// one. Neither refusal loads a byte.
	DownloadBytes int64
}

// DownloadChunk is the most bytes of its attachment a download reads
// from the store at once and holds (UploadLimits.DownloadBytes): a
// query per MiB sent.
const DownloadChunk = 1 << 20

// DownloadHold is what a download of an attachment of a chunk or more
// holds and reserves (downloadHold): 128 downloads under way in the
// default room.
const DownloadHold = 2 * DownloadChunk

// downloadHold is what a download of an attachment of n bytes holds, and
// reserves against UploadLimits.DownloadBytes: its buffer, a chunk (the
// whole attachment where smaller), and as much again for the store's
// copy of a chunk while one is read (the driver's bytes, copied into the
// buffer); at most all the room, the buffer half of it.
func (l UploadLimits) downloadHold(n int64) (hold, buf int64) {
	buf = min(n, DownloadChunk, max(1, l.DownloadBytes/2))
	return min(2*buf, l.DownloadBytes), buf
}

// downloadShare is how many attachment bytes one user's downloads may
// hold at once (UploadLimits.DownloadBytes): a quarter of the node's
// room, at least one download (DownloadHold), at most all of it. With
// the defaults 64 MiB: 32 downloads of theirs under way (more of smaller
// attachments), a screen of images loading at once.
func (l UploadLimits) downloadShare() int64 {
	return min(l.DownloadBytes, max(l.DownloadBytes/4, DownloadHold))
}

func (l UploadLimits) withDefaults() UploadLimits {
	l.Limits = l.Limits.WithDefaults()
	orDefault(&l.Decodes, DefaultUploadDecodes)
	orDefault(&l.DecodeWait, DefaultUploadDecodeWait)
	l.PerSecond = cmp.Or(l.PerSecond, DefaultUploadsPerSecond)
	orDefault(&l.Burst, DefaultUploadBurst)
	l.Quota = cmp.Or(l.Quota, DefaultUploadQuota)
	orDefault(&l.OrphanTTL, DefaultUploadOrphanTTL)
	orDefault(&l.MaxFileBytes, DefaultUploadMaxFileBytes)
	orDefault(&l.Files, DefaultUploadFiles)
	orDefault(&l.DownloadBytes, DefaultDownloadBytes)
	return l
}

// uploadGate holds what uploads share on a node: the per-user rate limit
// and the decode slots. Safe for concurrent use.
type uploadGate struct {
	lim     UploadLimits
	rate    *limiterSet
	decodes slots // a token per decode under way (DecodeWait, Decodes)
	files   slots // a token per upload (image or file) being received: at most Files x MaxFileBytes buffered
	// downloads holds a unit per attachment byte being served
	// (DownloadBytes).
	downloads *semaphore.Weighted
	mu        sync.Mutex
	held      map[string]int64 // attachment bytes each user's downloads hold (downloadShare); guarded by mu
}

// shareTake reserves n bytes of user's download share; false when their
// downloads under way hold too much for n more. A user holding nothing
// may always take one download: n is at most the room, which can be
// less than a chunk, and the share is never less than n.
func (g *uploadGate) shareTake(user string, n int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if held := g.held[user]; held > 0 && held+n > g.lim.downloadShare() {
		return false
	}
	g.held[user] += n
	return true
}

// shareGive returns what shareTake reserved.
func (g *uploadGate) shareGive(user string, n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held[user] -= n; g.held[user] <= 0 {
		delete(g.held, user) // the map holds only users downloading now
	}
}

func newUploadGate(l UploadLimits, hit func(string)) *uploadGate {
	return &uploadGate{
		lim:     l,
		rate:    newLimiterSet("uploads", l.PerSecond, l.Burst, hit),
		decodes: make(slots, l.Decodes),
		files:   make(slots, l.Files),

		downloads: semaphore.NewWeighted(l.DownloadBytes),
		held:      make(map[string]int64),
	}
}

// slots bounds work that holds memory on a node (decodes, files being
// received): a token per piece under way. Safe for concurrent use.
type slots chan struct{}

// acquire waits up to wait for a slot; the caller calls release when its
// work is done. Waiting longer answers EUNAVAILABLE with a retry hint
// (the server is busy with busy), so a burst of uploads queues briefly
// instead of holding requests (and their bodies) without bound.
func (s slots) acquire(ctx context.Context, wait time.Duration, busy string) error {
	select {
	case s <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return &parley.Error{Code: parley.EUNAVAILABLE, Message: "the server is busy " + busy + "; retry shortly",
			RetryAfter: uploadRetryAfterUnavailable}
	}
}

func (s slots) release() { <-s }

func (s *Server) uploadRoutes(mux *routeMux) {
	mux.HandleFunc("POST /v1/uploads", s.authed(s.handleUpload))
	mux.HandleFunc("POST /v1/files", s.authed(s.handleFileUpload))
	mux.HandleFunc("POST /v1/attachments/{id}/link", s.authed(s.handleAttachmentLink))
	mux.HandleFunc("GET /v1/attachments/{id}", s.handleAttachment(false))
	mux.HandleFunc("GET /v1/attachments/{id}/thumb", s.handleAttachment(true))
}

// handleUpload stores one image sent as the raw body or as the "file" part
// of a multipart/form-data body. The file name, if any, is ignored: the
// type comes from the content and the stored name is a new id.
//
// In order, cheapest refusal first: the body is bounded before anything
// reads it; the user's upload rate; a receiving slot (shared with file
// uploads: Files bodies held at once); the image's header, size and
// decode cost (media.Inspect, nothing decoded); the user's quota against
// the upload's size; a decode slot; the decode; and the quota again,
// exactly, in the store's write.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, u parley.User) {
	g := s.uploads
	// Multipart framing adds a little; media.Inspect enforces the exact
	// limit on the file itself.
	r.Body = http.MaxBytesReader(w, r.Body, g.lim.MaxBytes+64<<10)
	if err := g.rate.check(u.ID); err != nil {
		s.writeError(w, err)
		return
	}
	// A receiving slot, as a file upload takes, before any byte of the
	// body is read: Inspect holds the whole body (up to MaxBytes), and
	// Decode still holds it, so without a slot every concurrent upload
	// held one.
	if err := g.files.acquire(r.Context(), g.lim.DecodeWait, "receiving other uploads"); err != nil {
		s.writeError(w, err)
		return
	}
	defer g.files.release()
	body, _, err := uploadBody(r) // an image's name is ignored
	if err != nil {
		s.writeError(w, err)
		return
	}
	up, err := media.Inspect(body, g.lim.Limits)
	if err != nil {
		s.writeError(w, err)
		return
	}
	quota, err := s.checkQuota(r.Context(), u.ID, up.Size())
	if err != nil {
		s.writeError(w, err)
		return
	}
	if err := g.decodes.acquire(r.Context(), g.lim.DecodeWait, "processing other uploads"); err != nil {
		s.writeError(w, err)
		return
	}
	img, err := up.Decode()
	g.decodes.release()
	if err != nil {
		s.writeError(w, err)
		return
	}
	a := parley.Attachment{ContentType: img.ContentType, Size: int64(len(img.Data)), Width: img.Width, Height: img.Height}
	s.storeUpload(w, r, u, a, img.Data, img.Thumb, quota)
}

// storeUpload stores a checked upload under a new id and answers 201 with
// the attachment, or the store's error.
func (s *Server) storeUpload(w http.ResponseWriter, r *http.Request, u parley.User, a parley.Attachment, data, thumb []byte, quota int64) {
	id, err := uuid.NewV7()
	if err != nil {
		s.writeError(w, err)
		return
	}
	a.ID = id.String()
	if err := s.store.PutAttachment(r.Context(), u.ID, a, data, thumb, quota); err != nil {
		s.writeError(w, err)
		return
	}
	s.metrics.uploads.Inc()
	writeJSON(w, http.StatusCreated, withAttachmentURLs(a))
}

// checkQuota returns the quota to pass the store (0: none) after checking
// that n more bytes fit in userID's: a cheap refusal before the work, the
// store's write checking again exactly.
func (s *Server) checkQuota(ctx context.Context, userID string, n int64) (int64, error) {
	quota := max(0, s.uploads.lim.Quota) // negative: no quota, as 0 is to the store
	if quota == 0 {
		return 0, nil
	}
	used, err := s.store.UploadUsage(ctx, userID)
	if err != nil {
		return 0, err
	}
	if used+n > quota {
		return 0, parley.QuotaError(used, n, quota)
	}
	return quota, nil
}

// sweepUploads deletes the uploads no message has held for OrphanTTL
// before now, a batch at a time, and returns how many. The janitor calls
// it every minute.
func (s *Server) sweepUploads(ctx context.Context, now time.Time) (int, error) {
	before := now.Add(-s.uploads.lim.OrphanTTL)
	total := 0
	for {
		n, err := s.store.DeleteOrphanAttachments(ctx, before, uploadSweepBatch)
		total += n
		if err != nil || n < uploadSweepBatch {
			return total, err
		}
	}
}

// uploadBody returns what an upload request uploads: the raw body, or
// the "file" part of a multipart/form-data body with its file name (""
// for a raw body).
func uploadBody(r *http.Request) (io.Reader, string, error) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "multipart/form-data" {
		return r.Body, "", nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, "", parley.Errorf(parley.EINVALID, "malformed multipart body")
	}
	for {
		p, err := mr.NextPart()
		if err != nil {
			return nil, "", uploadReadError(err, "multipart body has no \"file\" part")
		}
		if p.FormName() == "file" {
			return p, p.FileName(), nil
		}
	}
}

func uploadReadError(err error, eof string) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return parley.Errorf(parley.ETOOLARGE, "upload is larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return parley.Errorf(parley.EINVALID, "%s", eof)
	}
	return parley.Errorf(parley.EINVALID, "malformed multipart body")
}

// AttachmentLink is the reply to POST /v1/attachments/{id}/link.
type AttachmentLink struct {
	URL string `json:"url"`
	// ThumbURL is empty for a file, which has no thumbnail.
	ThumbURL  string    `json:"thumb_url,omitempty"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) handleAttachmentLink(w http.ResponseWriter, r *http.Request, u parley.User) {
	id := r.PathValue("id")
	// Check access now: a link is only handed to someone who may see it.
	// AttachmentInfo reads no bytes.
	a, _, err := s.store.AttachmentInfo(r.Context(), u.ID, id, true)
	if err != nil {
		s.writeError(w, err)
		return
	}
	exp := time.Now().Add(linkTTL).Truncate(time.Second)
	base := attachmentPath(id)
	l := AttachmentLink{URL: base + "?" + s.signLink(u.ID, id, false, exp), ExpiresAt: exp.UTC()}
	if a.Name == "" {
		l.ThumbURL = base + "/thumb?" + s.signLink(u.ID, id, true, exp)
	}
	writeJSON(w, http.StatusOK, l)
}

// signLink returns the query string of a signed link: who asked for it,
// the expiry and an HMAC over those, the attachment and the variant. The
// download still checks that user's access, so leaving a conversation
// revokes links handed out before.
func (s *Server) signLink(userID, id string, thumb bool, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	q := url.Values{"u": {userID}, "exp": {e}, "sig": {s.linkMAC(userID, id, thumb, e)}}
	return q.Encode()
}

func (s *Server) linkMAC(userID, id string, thumb bool, exp string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	variant := "full"
	if thumb {
		variant = "thumb"
	}
	io.WriteString(m, "attachment\x00"+userID+"\x00"+id+"\x00"+variant+"\x00"+exp)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// linkUser returns the user a valid, unexpired signed link was made for,
// or "" when the request carries none. A banned user's links are none: a
// link is its user's access, which a ban ends as it ends their tokens.
func (s *Server) linkUser(r *http.Request, id string, thumb bool) string {
	q := r.URL.Query()
	uid, exp, sig := q.Get("u"), q.Get("exp"), q.Get("sig")
	if uid == "" || exp == "" || sig == "" || s.svc.bans.has(uid) {
		return ""
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || time.Now().Unix() > n {
		return ""
	}
	if !hmac.Equal([]byte(sig), []byte(s.linkMAC(uid, id, thumb, exp))) {
		return ""
	}
	return uid
}

// holdDownload reserves n bytes, what a download is about to hold
// (downloadHold: a chunk of its attachment, whose size AttachmentInfo
// told without loading it, and the store's copy), against UploadLimits.DownloadBytes until
// release is called, after the response is written. With no room it
// waits up to DecodeWait, holding nothing, then answers unavailable. So
// a refused or waiting download has read no byte of its attachment, and
// bytes are loaded only into room reserved for them.
//
// The bytes count first against user's share (downloadShare): a
// download past it is refused at once, without waiting.
func (s *Server) holdDownload(ctx context.Context, user string, n int64) (release func(), err error) {
	g := s.uploads
	if !g.shareTake(user, n) {
		return nil, &parley.Error{Code: parley.EUNAVAILABLE,
			Message: "too many of your downloads are under way at once; retry when one has finished", RetryAfter: uploadRetryAfterUnavailable}
	}
	if !g.downloads.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, g.lim.DecodeWait)
		err = g.downloads.Acquire(wctx, n)
		cancel()
		if err != nil {
			g.shareGive(user, n)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, &parley.Error{Code: parley.EUNAVAILABLE,
				Message: "the server is busy serving other downloads; retry shortly", RetryAfter: uploadRetryAfterUnavailable}
		}
	}
	return func() { g.downloads.Release(n); g.shareGive(user, n) }, nil
}

// handleAttachment serves an attachment's bytes, an image inline and a
// file as a download (serveFileHeaders), and never as anything a browser
// would run. A file has no thumbnail: its /thumb is not_found. Ranges,
// conditional requests (its ETag: attachmentETag) and HEAD (the GET
// route's too) are http.ServeContent's, on the attachment read a chunk
// at a time (attachmentReader) into room held against the download
// budget (holdDownload).
func (s *Server) handleAttachment(thumb bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var (
			uid string
			err error
		)
		cache := "private, max-age=86400, immutable"
		if uid = s.linkUser(r, id, thumb); uid != "" {
			cache = "private, max-age=" + strconv.Itoa(int(linkTTL.Seconds()))
		} else {
			tok, _ := bearer(r)
			var u parley.User
			if u, err = s.svc.authenticate(r.Context(), tok); err != nil {
				s.writeError(w, err)
				return
			}
			uid = u.ID
		}
		// Access and size first, no bytes: a download refused (not
		// allowed, no room) or waiting for room has loaded nothing.
		a, n, err := s.store.AttachmentInfo(r.Context(), uid, id, thumb)
		if err == nil && thumb && a.Name != "" {
			err = parley.ErrNotFound
		}
		if err != nil {
			s.writeError(w, err)
			return
		}
		hold, buf := s.uploads.lim.downloadHold(n)
		release, err := s.holdDownload(r.Context(), uid, hold)
		if err != nil {
			s.writeError(w, err)
			return
		}
		defer release()
		// Attachments never change, so the bytes are the n told (or,
		// should the attachment have been withdrawn meanwhile,
		// not_found as above). They are read only as ServeContent
		// sends them, a chunk at a time into the room held: a HEAD, a
		// 304 or a 412 reads nothing, a range its own chunks. A
		// thumbnail's first chunk (a thumbnail is a few KiB) is read
		// now, for its type.
		body := &attachmentReader{size: n, buf: make([]byte, 0, buf), read: func(off int64, p []byte) (int, error) {
			return s.store.ReadAttachment(r.Context(), uid, id, thumb, off, p)
		}}
		ct := a.ContentType
		if thumb {
			head, err := body.head()
			if err != nil {
				s.writeError(w, err)
				return
			}
			ct = http.DetectContentType(head) // thumbnails are PNG or JPEG
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Cache-Control", cache)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Content-Disposition", "inline")
		if a.Name != "" {
			serveFileHeaders(h, a)
		}
		h.Set("ETag", attachmentETag(a.ID, thumb))
		if rg := r.Header.Get("Range"); rg != "" {
			unit, spec, _ := strings.Cut(rg, "=")
			switch {
			case !strings.EqualFold(strings.TrimSpace(unit), "bytes"):
				// RFC 9110 14.2: a Range of a unit the server does not
				// know is ignored (ServeContent answered 416).
				r.Header.Del("Range")
			case rangeCount(spec) > MaxRanges:
				// Refused (416) as RFC 9110 15.5.17 allows for an
				// excessive request of small ranges, whether well
				// formed or not: one that ServeContent finds malformed,
				// so that the conditions that come first (If-Match's
				// 412, If-None-Match's 304, a failed If-Range's 200)
				// still do, as for any malformed Range.
				r.Header.Set("Range", "bytes=too-many-ranges")
			case unit != "bytes":
				// Units are case-insensitive; ServeContent knows
				// "bytes=" alone.
				r.Header.Set("Range", "bytes="+spec)
			}
		}
		// ServeContent answers Range and If-Range (206, multipart for
		// more than one range, 416), If-None-Match (304), If-Match
		// (412) and HEAD, and sets Content-Length. A read that fails
		// once the headers went out (access was checked just before)
		// can only cut the answer short: its Content-Length tells the
		// client.
		http.ServeContent(downloadWriter{w, n}, r, "", time.Time{}, body)
		if err := body.close(); err != nil && r.Context().Err() == nil {
			s.log.Warn("reading an attachment being served", "attachment", id, "err", err)
		}
	}
}

// rangeCount is how many ranges a Range's ranges-specifier (after
// "bytes=") names: its parts that are not empty, as ServeContent counts
// them.
func rangeCount(spec string) int {
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		if strings.TrimSpace(part) != "" {
			n++
		}
	}
	return n
}

// smallRead is io.Copy's buffer: ServeContent sends each range with
// io.CopyN, which reads 32 KiB at a time and less only for a range's
// last bytes (or a range shorter than that).
const smallRead = 32 << 10

// attachmentReader is an attachment's bytes as an io.ReadSeeker for
// http.ServeContent, of a size known beforehand (Store.AttachmentInfo),
// read from the store (read: Store.ReadAttachment) into buf, whose
// capacity is held for it (downloadHold): seeking
// (ServeContent's way to learn the size and reach a range) reads
// nothing, and a Read at an offset buf does not hold reads the chunk
// that starts there, or only the bytes asked for when fewer than
// smallRead (a range's end: a one-byte range reads one byte). So a
// range reads its own bytes, and a whole download holds one chunk at a
// time. Not safe for concurrent use: ServeContent reads from one
// goroutine at a time (its own, or its multipart writer's).
//
// Its methods may run on ServeContent's goroutine (a multipart answer's
// parts are written by one), which can outlive the handler when the
// client goes away: mu orders them with close, which the handler calls
// before it releases the room held, so no read is under way (holding a
// chunk) once the room is given back, and none starts after.
type attachmentReader struct {
	size   int64
	read   func(off int64, p []byte) (int, error)
	mu     sync.Mutex
	closed bool
	buf    []byte // bytes [at, at+len(buf)) of the attachment
	at     int64
	off    int64
	err    error // the read that failed, which every later Read returns
}

// errReaderClosed is what a Read after close returns.
var errReaderClosed = errors.New("attachment reader closed: the answer ended")

// close waits for a Read under way, makes every later one fail, and
// returns the read that failed, if one did.
func (l *attachmentReader) close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.err
}

// fill reads n bytes at off into buf.
func (l *attachmentReader) fill(off int64, n int) error {
	if l.err != nil {
		return l.err
	}
	l.buf, l.at = l.buf[:n], off
	if _, err := l.read(off, l.buf); err != nil {
		if err == io.EOF { // attachments never change: the size said more
			err = fmt.Errorf("attachment holds fewer than the %d bytes its size said", l.size)
		}
		l.buf, l.err = l.buf[:0], err
		return err
	}
	return nil
}

// head returns the attachment's first bytes, a chunk (or all of them),
// reading them.
func (l *attachmentReader) head() ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.fill(0, int(min(int64(cap(l.buf)), l.size))); err != nil {
		return nil, err
	}
	return l.buf, nil
}

func (l *attachmentReader) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errReaderClosed
	}
	if l.off >= l.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if l.off < l.at || l.off >= l.at+int64(len(l.buf)) {
		n := min(int64(cap(l.buf)), l.size-l.off)
		if len(p) < smallRead {
			n = min(n, int64(len(p)))
		}
		if err := l.fill(l.off, int(n)); err != nil {
			return 0, err
		}
	}
	n := copy(p, l.buf[l.off-l.at:])
	l.off += int64(n)
	return n, nil
}

func (l *attachmentReader) Seek(offset int64, whence int) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += l.off
	case io.SeekEnd:
		offset += l.size
	default:
		return 0, errors.New("attachmentReader.Seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("attachmentReader.Seek: negative position")
	}
	l.off = offset
	return offset, nil
}

// downloadWriter is the http.ResponseWriter ServeContent answers a
// download with. Every 416 gets the attachment's size in Content-Range
// (bytes */size), as docs/protocol.md promises: ServeContent sets it
// for a range past the end, not for a malformed one. And an error
// answer (412, 416) goes without the headers set for the attachment's
// bytes: Cache-Control (its "immutable" is the bytes' promise, not an
// error's), ETag and Content-Disposition (an error's text is no file).
// A 304 keeps them: RFC 9110 15.4.5 wants the Cache-Control and ETag a
// 200 would carry.
type downloadWriter struct {
	http.ResponseWriter
	size int64
}

func (w downloadWriter) WriteHeader(code int) {
	h := w.Header()
	if code >= 400 {
		h.Del("Cache-Control")
		h.Del("ETag")
		h.Del("Content-Disposition")
	}
	if code == http.StatusRequestedRangeNotSatisfiable && h.Get("Content-Range") == "" {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(w.size, 10))
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w downloadWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// MaxRanges is the most ranges a download's Range may name: one with
// more is refused, 416, as RFC 9110 allows. ServeContent already ignores
// ranges that add up to more than the attachment (200, the whole), but
// many small ones still cost a part header and a store read each (about
// 100 bytes for a byte or two of content); no client needs more than a
// few, and ours ask for one at most.
const MaxRanges = 8

// attachmentETag is the strong entity tag of an attachment's variant:
// attachments never change (a new upload is a new id), so the id and
// the variant name its bytes for good.
func attachmentETag(id string, thumb bool) string {
	if thumb {
		return `"` + id + `-thumb"`
	}
	return `"` + id + `"`
}
