//go:build !linux

package server

import "errors"

// pollerOS: no poller outside Linux (see poller).
type pollerOS struct{}

func newPoller() (*poller, error) { return nil, errors.New("no poller on this platform") }

func (p *poller) watch(fd int, id uint64) error { return errors.ErrUnsupported }
func (p *poller) loop()                         { p.wg.Done() }
func (p *poller) stopLoop()                     {}
func (p *poller) release()                      {}
