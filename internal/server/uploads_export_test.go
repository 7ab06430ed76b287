package server

import (
	"context"
	"time"
)

// SweepUploads runs the janitor's orphan sweep once, as if at now.
func (s *Server) SweepUploads(ctx context.Context, now time.Time) (int, error) {
	return s.sweepUploads(ctx, now)
}

// HoldUploadDecodes takes every decode slot, as long decodes would, until
// the returned func is called.
func (s *Server) HoldUploadDecodes() (release func()) {
	for range cap(s.uploads.decodes) {
		s.uploads.decodes <- struct{}{}
	}
	return func() {
		for range cap(s.uploads.decodes) {
			s.uploads.release()
		}
	}
}
