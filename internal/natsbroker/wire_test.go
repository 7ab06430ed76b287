package natsbroker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/natsbroker"
	"github.com/parleychat/parley/internal/natsbroker/natstest"
)

// collect subscribes to br and returns a channel of every event it hears.
func collect(t *testing.T, br *natsbroker.Broker) chan parley.Event {
	t.Helper()
	ch := make(chan parley.Event, 1000)
	stop, err := br.Subscribe(func(m parley.BrokerMessage) {
		for _, e := range m.Events {
			ch <- e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return ch
}

func next(t *testing.T, ch chan parley.Event) parley.Event {
	t.Helper()
	select {
	case e := <-ch:
		return e
	case <-time.After(10 * time.Second): // a liveness bound
		t.Fatal("gave up waiting for an event")
		return parley.Event{}
	}
}

// TestDataNotDecoded: events published with Data reach another node as
// their routing fields and Data, byte for byte, and that node decodes no
// payload (natsbroker.Counts.Payloads stays 0); the same events from a
// node publishing wire version 1 are decoded, one payload each.
func TestDataNotDecoded(t *testing.T) {
	subject := natstest.Subject(t)
	a, b := open(t, embedded.ClientURL(), subject, "a"), open(t, embedded.ClientURL(), subject, "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	old, err := natsbroker.Open(ctx, natsbroker.Config{URL: embedded.ClientURL() + "?wire=1", Subject: subject, Name: "old"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { old.Close() })
	if !a.CarriesEventData() || old.CarriesEventData() {
		t.Fatalf("CarriesEventData: %v for version 2, %v for version 1", a.CarriesEventData(), old.CarriesEventData())
	}
	ch := collect(t, b)
	at := time.Date(2026, 12, 5, 1, 2, 3, 456789000, time.UTC)
	const n = 20
	var sent []parley.Event
	for i := range n {
		e := parley.Event{Pos: int64(100 + i), Shard: i % 4, Type: parley.EventNewMessage, ConversationID: "c1", At: at,
			Message: &parley.Message{ID: "m", ConversationID: "c1", Seq: int64(i), Text: "hi <&> ☃", CreatedAt: at,
				Attachment: &parley.Attachment{ID: "a1", URL: "/v1/attachments/a1"}},
			Audience: []string{"u1", "u2"}}
		data, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		e.Data = data
		sent = append(sent, e)
		if err := a.Publish(context.Background(), parley.BrokerMessage{Node: "a", Events: []parley.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range sent {
		got := next(t, ch)
		if got.Pos != want.Pos || got.Shard != want.Shard || got.Type != want.Type || got.ConversationID != want.ConversationID ||
			!got.At.Equal(want.At) || !bytes.Equal(got.Data, want.Data) || len(got.Audience) != 2 || got.Audience[1] != "u2" {
			t.Fatalf("got %+v\nwant %+v", got, want)
		}
		if got.Message != nil {
			t.Fatalf("event %d came decoded: %+v", got.Pos, got.Message)
		}
	}
	if c := b.Counts(); c.Read != n || c.Payloads != 0 || c.Dropped != 0 {
		t.Fatalf("counts after %d events with Data: %+v, want %d read and 0 payloads decoded", n, c, n)
	}
	for _, e := range sent {
		e.Data = nil
		if err := old.Publish(context.Background(), parley.BrokerMessage{Node: "old", Events: []parley.Event{e}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range sent {
		got := next(t, ch)
		if got.Pos != want.Pos || got.Message == nil || got.Message.Text != want.Message.Text || got.Data != nil {
			t.Fatalf("from version 1: got %+v, want %+v", got, want)
		}
	}
	if c := b.Counts(); c.Payloads != n {
		t.Fatalf("counts after %d version 1 events: %+v, want %d payloads decoded", n, c, n)
	}
}

// TestMalformedDropped: what does not parse as a message of a known
// version (garbage, truncated, padded, a future version, bad flags) is
// dropped whole, counted and logged, and the subscription goes on.
func TestMalformedDropped(t *testing.T) {
	subject := natstest.Subject(t)
	b := open(t, embedded.ClientURL(), subject, "b")
	ch := collect(t, b)
	nc, err := nats.Connect(embedded.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	a := open(t, embedded.ClientURL(), subject, "a")
	good := parley.BrokerMessage{Node: "a", Events: []parley.Event{{Pos: 7, Type: parley.EventMessageRead, Audience: []string{"u"}, Data: []byte(`{"pos":7}`)}}}
	raw := captureOne(t, subject, func() {
		if err := a.Publish(context.Background(), good); err != nil {
			t.Fatal(err)
		}
	})
	if e := next(t, ch); e.Pos != 7 {
		t.Fatalf("got %+v", e)
	}
	bad := [][]byte{
		{0xff}, []byte("{"), {0}, {0, 2}, {0, 9, 1, 'n', 0, 0},
		raw[:len(raw)-1], raw[:len(raw)/2], append(bytes.Clone(raw), 0),
		bytes.Replace(bytes.Clone(raw), []byte{1, 7, 0}, []byte{5, 7, 0}, 1),    // an unknown flag (4)
		bytes.Replace(bytes.Clone(raw), []byte{1, 7, 0}, []byte{3, 7, 0}, 1),    // a quote-hidden list it does not hold
		bytes.Replace(bytes.Clone(raw), []byte{1, 7, 0}, []byte{1, 7, 0x80}, 1), // a shard that does not end
	}
	for _, d := range bad {
		if err := nc.Publish(subject, d); err != nil {
			t.Fatal(err)
		}
	}
	// The good message again, on the same connection (so after them).
	if err := nc.Publish(subject, raw); err != nil {
		t.Fatal(err)
	}
	if e := next(t, ch); e.Pos != 7 {
		t.Fatalf("after the malformed messages got %+v, want position 7 again", e)
	}
	if c := b.Counts(); c.Dropped != int64(len(bad)) {
		t.Fatalf("counts: %+v, want %d dropped", c, len(bad))
	}
}

// captureOne returns the bytes publish puts on subject.
func captureOne(t *testing.T, subject string, publish func()) []byte {
	t.Helper()
	nc, err := nats.Connect(embedded.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	publish()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return m.Data
}

// TestWireOption: the wire version comes from Config or the URL; an
// unknown one is refused at Open.
func TestWireOption(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range []string{"?wire=3", "?wire=x"} {
		if b, err := natsbroker.Open(ctx, natsbroker.Config{URL: embedded.ClientURL() + u}); err == nil {
			b.Close()
			t.Errorf("Open with %s: no error", u)
		}
	}
	b, err := natsbroker.Open(ctx, natsbroker.Config{URL: embedded.ClientURL() + "?wire=2&subject=x.y"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !b.CarriesEventData() {
		t.Error("wire=2 does not carry Data")
	}
}
