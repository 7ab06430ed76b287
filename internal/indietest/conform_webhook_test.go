package indietest

// Section 13: webhooks.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const hookSecret = "webhook-secret-for-the-conformance-test"

// hookSink is an endpoint that records every delivery.
type hookSink struct {
	url  string
	mu   sync.Mutex
	got  []delivery
	wake chan struct{}
}

type delivery struct {
	header http.Header
	body   []byte
}

func newHookSink(t *testing.T) *hookSink {
	h := &hookSink{wake: make(chan struct{}, 1)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.got = append(h.got, delivery{r.Header.Clone(), b})
		h.mu.Unlock()
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL + "/hook"
	return h
}

// find waits up to 10 s for a delivery for which match holds.
func (h *hookSink) find(match func(delivery) bool) (delivery, bool) {
	deadline := time.After(10 * time.Second)
	for {
		h.mu.Lock()
		for _, d := range h.got {
			if match(d) {
				h.mu.Unlock()
				return d, true
			}
		}
		h.mu.Unlock()
		select {
		case <-h.wake:
		case <-deadline:
			return delivery{}, false
		}
	}
}

type hookBody struct {
	ID                 string          `json:"id"`
	Type               string          `json:"type"`
	Pos                int64           `json:"pos"`
	Event              ev              `json:"event"`
	Members            []string        `json:"members"`
	OfflineUserIDs     []string        `json:"offline_user_ids"`
	QuoteHiddenUserIDs []string        `json:"quote_hidden_user_ids"`
	Shard              json.RawMessage `json:"shard"`
}

var _ = check("webhooks", func(t *testing.T, e *env) {
	a, b := e.newUser(t, "wh"), e.newUser(t, "wh")
	off := e.newUser(t, "wh")
	g := a.group("hooks", b, off)
	off.stop()
	p := b.send(g, "parent")
	a.ok("block", map[string]any{"user_id": b.id}, nil)
	var r wmsg
	a.ok("send", map[string]any{"conversation_id": g, "client_id": e.unique("c-"), "text": "reply", "reply_to": p.ID}, &r)

	d, ok := e.hooks.find(func(d delivery) bool { return strings.Contains(string(d.body), r.ID) })
	if !ok {
		t.Fatalf("no delivery of message %s", r.ID)
	}
	var hb hookBody
	json.Unmarshal(d.body, &hb)
	if hb.Type != "message.new" || d.header.Get("Parley-Event-Type") != "message.new" || hb.ID != d.header.Get("Parley-Event-Id") ||
		hb.ID != strconv.FormatInt(hb.Pos, 10) || d.header.Get("Parley-Delivery-Attempt") != "1" || hb.Shard != nil {
		t.Errorf("delivery headers %v body %s", d.header, d.body)
	}
	// The signature: t=<unix>,v1=hex(HMAC-SHA256(secret, "<t>.<body>")).
	sig := d.header.Get("Parley-Signature")
	var ts, v1 string
	for _, part := range strings.Split(sig, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(ts + "." + string(d.body)))
	if want := hex.EncodeToString(mac.Sum(nil)); v1 != want {
		t.Errorf("Parley-Signature %q, want v1=%s", sig, want)
	}
	if hb.Event.Message == nil || hb.Event.Message.ReplyTo == nil || hb.Event.Message.ReplyTo.Hidden != nil {
		t.Errorf("the event's quote is not whole: %s", d.body)
	}
	if strings.Join(hb.QuoteHiddenUserIDs, ",") != a.id {
		t.Errorf("quote_hidden_user_ids %v, want [%s]", hb.QuoteHiddenUserIDs, a.id)
	}
	found := false
	for _, id := range hb.OfflineUserIDs {
		found = found || id == off.id
		if id == a.id {
			t.Errorf("offline_user_ids holds the sender")
		}
	}
	if !found {
		t.Errorf("offline_user_ids %v, want %s among them", hb.OfflineUserIDs, off.id)
	}
	if len(hb.Members) != 3 {
		t.Errorf("members %v", hb.Members)
	}
})
