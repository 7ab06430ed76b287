package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media"
)

// File uploads (POST /v1/files): a file of any type, up to
// UploadLimits.MaxFileBytes, stored like an image (same table, access
// rules, quota, rate limit, orphan sweep and signed links) with its
// sanitised original name and a sniffed, inert content type, and served
// by GET /v1/attachments/{id} as a download (Content-Disposition:
// attachment), never rendered.

// Defaults for the file fields of UploadLimits.
const (
	DefaultUploadMaxFileBytes = media.DefaultMaxFileBytes
	DefaultUploadFiles        = 4
)

// handleFileUpload stores one file sent as the raw body (its name in the
// "name" query parameter) or as the "file" part of a multipart/form-data
// body (its name the part's filename). In order, cheapest refusal first:
// the body is bounded before anything reads it; the user's upload rate; a
// declared Content-Length over the limit; a buffering slot (these three
// before any byte of the body is read); the body, read up to the limit
// and no further; the user's quota; and the quota
// again, exactly, in the store's write.
func (s *Server) handleFileUpload(w http.ResponseWriter, r *http.Request, u parley.User) {
	g := s.uploads
	limit := g.lim.MaxFileBytes
	r.Body = http.MaxBytesReader(w, r.Body, limit+uploadFraming)
	if err := g.rate.check(u.ID); err != nil {
		s.writeError(w, err)
		return
	}
	if r.ContentLength > limit+uploadFraming {
		s.writeError(w, fileTooLarge(limit))
		return
	}
	// The slot before the multipart reader, which reads the body up to
	// the file's part: a refusal comes before any byte of the body is
	// read (with Expect: 100-continue, before the client sends one).
	if err := g.files.acquire(r.Context(), g.lim.DecodeWait, "receiving other files"); err != nil {
		s.writeError(w, err)
		return
	}
	defer g.files.release()
	body, name, err := uploadBody(r)
	if err != nil {
		s.writeError(w, err)
		return
	}
	if name == "" {
		name = r.URL.Query().Get("name")
	}
	data, err := readBounded(body, limit, r.ContentLength)
	if err != nil {
		s.writeError(w, err)
		return
	}
	quota, err := s.checkQuota(r.Context(), u.ID, int64(len(data)))
	if err != nil {
		s.writeError(w, err)
		return
	}
	a := parley.Attachment{ContentType: media.FileContentType(data), Size: int64(len(data)), Name: media.SanitizeFileName(name)}
	s.storeUpload(w, r, u, a, data, nil, quota)
}

// readBounded reads r to its end, at most limit bytes: one byte more is
// too_large, nothing is invalid. The buffer is sized once from the
// declared length when there is one, so it never holds more than the
// limit and a little.
func readBounded(r io.Reader, limit, declared int64) ([]byte, error) {
	var buf bytes.Buffer
	if declared > 0 {
		buf.Grow(int(min(declared, limit+1)) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(r, limit+1)); err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return nil, fileTooLarge(limit)
		}
		return nil, parley.Errorf(parley.EINVALID, "the file could not be read")
	}
	switch {
	case int64(buf.Len()) > limit:
		return nil, fileTooLarge(limit)
	case buf.Len() == 0:
		return nil, parley.Errorf(parley.EINVALID, "the file is empty")
	}
	return buf.Bytes(), nil
}

func fileTooLarge(limit int64) error {
	return parley.Errorf(parley.ETOOLARGE, "file is larger than %d bytes", limit)
}

// serveFileHeaders sets the headers that make a browser download a file
// and never run it: its inert type, Content-Disposition attachment with
// the name (RFC 6266; mime.FormatMediaType writes filename*= in RFC 2231
// encoding for a name that is not plain ASCII), nosniff and a sandbox.
func serveFileHeaders(h http.Header, a parley.Attachment) {
	h.Set("Content-Type", media.SafeFileType(a.ContentType))
	disp := mime.FormatMediaType("attachment", map[string]string{"filename": a.Name})
	if disp == "" { // a name FormatMediaType cannot write: already sanitised, so only paranoia
		disp = "attachment"
	}
	h.Set("Content-Disposition", disp)
}
