package server

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/google/uuid"

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
	uploadSweepBatch            = 100
	uploadRetryAfterUnavailable = 2 * time.Second
)

// UploadLimits bounds image uploads. Zero fields take their defaults; a
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
}

func (l UploadLimits) withDefaults() UploadLimits {
	l.Limits = l.Limits.WithDefaults()
	orDefault(&l.Decodes, DefaultUploadDecodes)
	orDefault(&l.DecodeWait, DefaultUploadDecodeWait)
	l.PerSecond = cmp.Or(l.PerSecond, DefaultUploadsPerSecond)
	orDefault(&l.Burst, DefaultUploadBurst)
	l.Quota = cmp.Or(l.Quota, DefaultUploadQuota)
	orDefault(&l.OrphanTTL, DefaultUploadOrphanTTL)
	return l
}

// uploadGate holds what uploads share on a node: the per-user rate limit
// and the decode slots. Safe for concurrent use.
type uploadGate struct {
	lim     UploadLimits
	rate    *limiterSet
	decodes chan struct{} // a token per decode under way
}

func newUploadGate(l UploadLimits, hit func(string)) *uploadGate {
	return &uploadGate{
		lim:     l,
		rate:    newLimiterSet("uploads", l.PerSecond, l.Burst, hit),
		decodes: make(chan struct{}, l.Decodes),
	}
}

// acquire waits up to DecodeWait for a decode slot; the caller calls
// release when its decode is done. Waiting longer answers EUNAVAILABLE
// with a retry hint, so a burst of uploads queues briefly instead of
// holding requests (and their bodies) without bound.
func (g *uploadGate) acquire(ctx context.Context) error {
	select {
	case g.decodes <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(g.lim.DecodeWait)
	defer t.Stop()
	select {
	case g.decodes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return &parley.Error{Code: parley.EUNAVAILABLE, Message: "the server is busy processing other uploads; retry shortly",
			RetryAfter: uploadRetryAfterUnavailable}
	}
}

func (g *uploadGate) release() { <-g.decodes }

func (s *Server) uploadRoutes(mux *routeMux) {
	mux.HandleFunc("POST /v1/uploads", s.authed(s.handleUpload))
	mux.HandleFunc("POST /v1/attachments/{id}/link", s.authed(s.handleAttachmentLink))
	mux.HandleFunc("GET /v1/attachments/{id}", s.handleAttachment(false))
	mux.HandleFunc("GET /v1/attachments/{id}/thumb", s.handleAttachment(true))
}

// handleUpload stores one image sent as the raw body or as the "file" part
// of a multipart/form-data body. The file name, if any, is ignored: the
// type comes from the content and the stored name is a new id.
//
// In order, cheapest refusal first: the body is bounded before anything
// reads it; the user's upload rate; the image's header, size and decode
// cost (media.Inspect, nothing decoded); the user's quota against the
// upload's size; a decode slot; the decode; and the quota again, exactly,
// in the store's write.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, u parley.User) {
	g := s.uploads
	// Multipart framing adds a little; media.Inspect enforces the exact
	// limit on the file itself.
	r.Body = http.MaxBytesReader(w, r.Body, g.lim.MaxBytes+64<<10)
	if err := g.rate.check(u.ID); err != nil {
		s.writeError(w, err)
		return
	}
	body := io.Reader(r.Body)
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		mr, err := r.MultipartReader()
		if err != nil {
			s.writeError(w, parley.Errorf(parley.EINVALID, "malformed multipart body"))
			return
		}
		for {
			p, err := mr.NextPart()
			if err != nil {
				s.writeError(w, uploadReadError(err, "multipart body has no \"file\" part"))
				return
			}
			if p.FormName() == "file" {
				body = p
				break
			}
		}
	}
	up, err := media.Inspect(body, g.lim.Limits)
	if err != nil {
		s.writeError(w, err)
		return
	}
	quota := max(0, g.lim.Quota) // negative: no quota, as 0 is to the store
	if quota > 0 {
		used, err := s.store.UploadUsage(r.Context(), u.ID)
		if err != nil {
			s.writeError(w, err)
			return
		}
		if used+up.Size() > quota {
			s.writeError(w, parley.QuotaError(used, up.Size(), quota))
			return
		}
	}
	if err := g.acquire(r.Context()); err != nil {
		s.writeError(w, err)
		return
	}
	img, err := up.Decode()
	g.release()
	if err != nil {
		s.writeError(w, err)
		return
	}
	id, err := uuid.NewV7()
	if err != nil {
		s.writeError(w, err)
		return
	}
	a := parley.Attachment{ID: id.String(), ContentType: img.ContentType, Size: int64(len(img.Data)), Width: img.Width, Height: img.Height}
	if err := s.store.PutAttachment(r.Context(), u.ID, a, img.Data, img.Thumb, quota); err != nil {
		s.writeError(w, err)
		return
	}
	s.metrics.uploads.Inc()
	writeJSON(w, http.StatusCreated, withAttachmentURLs(a))
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
	URL       string    `json:"url"`
	ThumbURL  string    `json:"thumb_url"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (s *Server) handleAttachmentLink(w http.ResponseWriter, r *http.Request, u parley.User) {
	id := r.PathValue("id")
	// Check access now: a link is only handed to someone who may see it.
	if _, _, err := s.store.AttachmentData(r.Context(), u.ID, id, true); err != nil {
		s.writeError(w, err)
		return
	}
	exp := time.Now().Add(linkTTL).Truncate(time.Second)
	base := attachmentPath(id)
	writeJSON(w, http.StatusOK, AttachmentLink{
		URL:       base + "?" + s.signLink(u.ID, id, false, exp),
		ThumbURL:  base + "/thumb?" + s.signLink(u.ID, id, true, exp),
		ExpiresAt: exp.UTC(),
	})
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
// or "" when the request carries none.
func (s *Server) linkUser(r *http.Request, id string, thumb bool) string {
	q := r.URL.Query()
	uid, exp, sig := q.Get("u"), q.Get("exp"), q.Get("sig")
	if uid == "" || exp == "" || sig == "" {
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

// handleAttachment serves an attachment's bytes, as an image and never as
// anything a browser would run.
func (s *Server) handleAttachment(thumb bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		var (
			a    parley.Attachment
			data []byte
			err  error
		)
		cache := "private, max-age=86400, immutable"
		if uid := s.linkUser(r, id, thumb); uid != "" {
			a, data, err = s.store.AttachmentData(r.Context(), uid, id, thumb)
			cache = "private, max-age=" + strconv.Itoa(int(linkTTL.Seconds()))
		} else {
			tok, _ := bearer(r)
			var u parley.User
			if u, err = s.svc.authenticate(r.Context(), tok); err == nil {
				a, data, err = s.store.AttachmentData(r.Context(), u.ID, id, thumb)
			}
		}
		if err != nil {
			s.writeError(w, err)
			return
		}
		ct := a.ContentType
		if thumb {
			ct = http.DetectContentType(data) // thumbnails are PNG or JPEG
		}
		h := w.Header()
		h.Set("Content-Type", ct)
		h.Set("Content-Length", strconv.Itoa(len(data)))
		h.Set("Cache-Control", cache)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
		h.Set("Content-Disposition", "inline")
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			w.Write(data)
		}
	}
}
