package server

import (
	"errors"

	"github.com/parleychat/parley/internal/webhook"
)

// newWebhooks makes the dispatcher of Config.Webhooks. Its enqueuer is
// woken by every event the broker brings (onBroker), never on the send
// path, and reads the store; so a slow or dead endpoint never slows chat.
func (s *Server) newWebhooks() (*webhook.Dispatcher, error) {
	st, ok := s.store.(webhook.Store)
	if !ok {
		return nil, errors.New("server: webhooks need a store with a webhook outbox (parley.WebhookQueue)")
	}
	cfg := s.cfg.Webhooks
	cfg.Store = st
	cfg.Connected = s.pres.connected
	cfg.Prepare = withURLs
	cfg.Registerer = s.metrics.reg
	cfg.Logger = s.log
	return webhook.New(cfg)
}
