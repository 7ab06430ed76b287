package webhook

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/parleychat/parley"
)

// Event kinds an endpoint subscribes to: the durable events, by the names
// webhooks use.
const (
	KindMessageNew          = "message.new"
	KindMessageDeleted      = "message.deleted"
	KindMessageRead         = "message.read"
	KindConversationUpdated = "conversation.updated"
)

// Kinds lists every kind, in the order the docs give them.
var Kinds = []string{KindMessageNew, KindMessageDeleted, KindMessageRead, KindConversationUpdated}

// Kind returns the webhook kind of a durable event type ("" for others).
func Kind(t parley.EventType) string {
	switch t {
	case parley.EventNewMessage:
		return KindMessageNew
	case parley.EventMessageDeleted:
		return KindMessageDeleted
	case parley.EventMessageRead:
		return KindMessageRead
	case parley.EventConversationUpdated:
		return KindConversationUpdated
	}
	return ""
}

// Limits of an endpoint spec, so a configuration cannot hold anything
// unbounded.
const (
	MaxSpecBytes   = 4096
	MinSecretBytes = 16
	MaxNameBytes   = 64
)

// Endpoint is a receiver configured by the operator.
type Endpoint struct {
	// Name identifies the endpoint in the store's outbox and in metrics
	// (the endpoint label). Default: the URL's host. Changing it starts a
	// new queue; the old one's deliveries are left in the store.
	Name string
	URL  string
	// Kinds the endpoint receives (at least one).
	Kinds []string
	// Secret signs every delivery (HMAC-SHA256, see Sign).
	Secret []byte
}

// wants reports whether e subscribes to kind.
func (e Endpoint) wants(kind string) bool { return slices.Contains(e.Kinds, kind) }

// ParseEndpoint parses an operator's endpoint spec:
//
//	url=https://push.example.com/parley,events=message.new,message.deleted,secret=S[,name=push]
//
// Fields are comma-separated key=value pairs; an item without "=" adds to
// the list of the key before it (events), so the URL itself must not
// contain a comma. events=* subscribes to every kind. The secret is at
// least MinSecretBytes bytes.
func ParseEndpoint(spec string) (Endpoint, error) {
	var e Endpoint
	if len(spec) > MaxSpecBytes {
		return e, fmt.Errorf("webhook spec is %d bytes, at most %d", len(spec), MaxSpecBytes)
	}
	last := ""
	seen := map[string]bool{}
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			if last != "events" || item == "" {
				return e, fmt.Errorf("webhook spec: %q is not key=value", item)
			}
			k, v = "events", item
		} else {
			k = strings.ToLower(strings.TrimSpace(k))
			if seen[k] {
				return e, fmt.Errorf("webhook spec: %s given twice", k)
			}
			seen[k] = true
		}
		last = k
		switch k {
		case "url":
			e.URL = v
		case "name":
			e.Name = v
		case "secret":
			e.Secret = []byte(v)
		case "events":
			if v == "*" {
				e.Kinds = append(e.Kinds, Kinds...)
				continue
			}
			if !slices.Contains(Kinds, v) {
				return e, fmt.Errorf("webhook spec: unknown event kind %q (known: %s, or *)", v, strings.Join(Kinds, ", "))
			}
			e.Kinds = append(e.Kinds, v)
		default:
			return e, fmt.Errorf("webhook spec: unknown key %q (known: url, events, secret, name)", k)
		}
	}
	return e, e.check()
}

// check validates e and fills its defaults.
func (e *Endpoint) check() error {
	u, err := url.Parse(e.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fmt.Errorf("webhook: url %q must be an http or https URL with a host and no user info", e.URL)
	}
	if len(e.Secret) < MinSecretBytes {
		return fmt.Errorf("webhook %s: secret must be at least %d bytes", e.URL, MinSecretBytes)
	}
	if len(e.Kinds) == 0 {
		return fmt.Errorf("webhook %s: events= names no event kind", e.URL)
	}
	slices.Sort(e.Kinds)
	e.Kinds = slices.Compact(e.Kinds)
	if e.Name == "" {
		e.Name = u.Host
	}
	if len(e.Name) > MaxNameBytes {
		return fmt.Errorf("webhook name %q is over %d bytes", e.Name, MaxNameBytes)
	}
	return nil
}
