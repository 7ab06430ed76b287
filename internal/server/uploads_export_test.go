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
func (s *Server) HoldUploadDecodes() (release func()) { return holdSlots(s.uploads.decodes) }

// HoldFileSlots takes every file receiving slot, as slow file uploads
// would, until the returned func is called.
func (s *Server) HoldFileSlots() (release func()) { return holdSlots(s.uploads.files) }

func holdSlots[C ~chan struct{}](c C) func() {
	for range cap(c) {
		c <- struct{}{}
	}
	return func() {
		for range cap(c) {
			<-c
		}
	}
}
