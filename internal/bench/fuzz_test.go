package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

const fuzzRunID = "RUN"

// scanClient is a client of room 3 with four senders, fresh for each
// input, with send seq 5 pending.
func scanClient() *client {
	w := &worker{job: Job{RunID: fuzzRunID}}
	w.marker = []byte(`"text":"pb|` + fuzzRunID + `|`)
	w.latency.Store(new(Histogram))
	w.ackLatency.Store(new(Histogram))
	c := &client{w: w, room: &room{idx: 3}, recv: make([]bitset, 4), replies: make(chan []byte, 1),
		pending: map[uint32]pendingSend{5: {}}}
	return c
}

// scanned is what handle did with one frame.
type scanned struct {
	cursor                      string // fmt of the client's cursor (shard -> last position)
	posRepeats                  int64
	delivered, dups, unexpected int64
	protoErrors, acked, replies int64
	ackedSeq                    uint32
	resumes, resyncs, goAwayMS  int64
	replayed                    int64
}

func scan(b []byte, pendingSeq uint32) scanned {
	c := scanClient()
	c.pending[pendingSeq] = pendingSend{}
	c.handle(context.Background(), nil, b)
	s := scanned{posRepeats: c.w.posRepeats.Load(), delivered: c.w.delivered.Load(),
		dups: c.dups.Load(), unexpected: c.unexpected.Load(), protoErrors: c.w.protoErrors.Load(),
		acked: c.ackedN.Load(), replies: int64(len(c.replies)), resumes: c.w.resumes.Load(),
		resyncs: c.resyncs.Load(), goAwayMS: c.goAwayMS.Load(), replayed: c.replayed.Load()}
	if s.acked > 0 {
		s.ackedSeq = pendingSeq
	}
	if c.cursor != nil {
		s.cursor = fmt.Sprint(map[int]int64(c.cursor))
	}
	return s
}

// canonical is f as the server writes it (internal/server encodeData: a
// Frame's fields in order, data as json.Marshal wrote it), or nil when f
// is an event whose data is not an event, or a resumed frame whose data is
// not a Resumed.
func canonical(f protocol.Frame) ([]byte, *parley.Event) {
	var ev *parley.Event
	if f.Type == protocol.TypeEvent {
		ev = new(parley.Event)
		if json.Unmarshal(f.Data, ev) != nil {
			return nil, nil
		}
		d, err := json.Marshal(ev)
		if err != nil {
			return nil, nil
		}
		f.Data = d
	}
	if f.Type == protocol.TypeResumed {
		var r protocol.Resumed
		if json.Unmarshal(f.Data, &r) != nil {
			return nil, nil
		}
		f.Data, _ = json.Marshal(r)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, nil
	}
	return b, ev
}

// markerFields reads "pb|RUN|room|sender|seq|sched..." from a message
// text, as decoded JSON; ok is false when it is not this run's.
func markerFields(text string) (f [4]int64, parsed, ok bool) {
	rest, ok := strings.CutPrefix(text, "pb|"+fuzzRunID+"|")
	if !ok {
		return f, false, false
	}
	for k := range f {
		n := 0
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		v, err := strconv.ParseInt(rest[:n], 10, 64)
		if err != nil {
			return f, false, true
		}
		f[k], rest = v, rest[n:]
		if len(rest) > 0 && rest[0] == '|' {
			rest = rest[1:]
		}
	}
	return f, true, true
}

func frameSeeds(t testing.TB) [][]byte {
	at := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	ev := func(e parley.Event) []byte {
		d, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(protocol.Frame{Type: protocol.TypeEvent, Data: d})
		return b
	}
	msg := func(text string) *parley.Message {
		return &parley.Message{ID: "m", ConversationID: "c", Seq: 1, SenderID: "u", Type: parley.Text, Text: text, CreatedAt: at}
	}
	return [][]byte{
		ev(parley.Event{Pos: 9, Type: parley.EventNewMessage, Message: msg("pb|RUN|3|1|7|1795000000000000000|xxxx"), At: at}),
		ev(parley.Event{Pos: 10, Type: parley.EventNewMessage, Message: msg("pb|RUN|2|1|7|1795000000000000000"), At: at}),
		ev(parley.Event{Pos: 11, Type: parley.EventNewMessage, Message: msg("pb|RUN|3|9|7|1"), At: at}),
		ev(parley.Event{Pos: 12, Type: parley.EventNewMessage, Message: msg("pb|RUN|3|x"), At: at}),
		ev(parley.Event{Pos: 13, Type: parley.EventNewMessage, Message: msg("pb|OTHER|3|1|7|1"), At: at}),
		ev(parley.Event{Type: parley.EventTypingStarted, ConversationID: "c", UserID: "u", UserName: `"pos":5`, At: at}),
		ev(parley.Event{Pos: 14, Type: parley.EventMessageRead, ReadSeq: 3, At: at}),
		ev(parley.Event{Pos: 15, Shard: 5, Type: parley.EventMessageRead, ReadSeq: 3, At: at}),
		ev(parley.Event{Pos: 9, Shard: 255, Type: parley.EventNewMessage, Message: msg("pb|RUN|3|1|7|1795000000000000000|xxxx"), At: at}),
		[]byte(`{"type":"reply","id":"s5","data":{"id":"m"}}`), []byte(`{"type":"reply","id":"s4294967301","data":{}}`),
		[]byte(`{"type":"reply","id":"r1","data":{}}`), []byte(`{"type":"reply","id":"s\"5","data":{}}`),
		[]byte(`{"type":"reply","data":{}}`), []byte(`{"type":"pong","id":"p1"}`), []byte(`{"type":"pong"}`),
		[]byte(`{"id":"s5","type":"reply"}`), []byte(`{"data":{"pos":3},"type":"event"}`),
		[]byte(`{"type":"error","id":"s5","error":{"code":"invalid","message":"m"}}`), []byte(`{"type":"error","id":"r2","error":{"code":"x","message":"m"}}`),
		[]byte(`{"type":"error","error":{"code":"x","message":"m"}}`), []byte(`{"type":"error"}`),
		[]byte(`{"type":"resumed","data":{"from":1,"to":5,"count":4}}`), []byte(`{"type":"resumed","data":{"from":1,"to":5}}`),
		[]byte(`{"type":"resumed","data":{"from":1,"to":5,"count":99999999999}}`), []byte(`{"type":"resync","data":{"head":7,"reason":"r"}}`),
		[]byte(`{"type":"goaway","data":{"reconnect_after_ms":100}}`), []byte(`{"type":"event"`), []byte(`{"type":"reply","id":"`),
		[]byte(`{"type":"event","data":{"pos":99999999999999999999999}}`), []byte(`x`), nil,
	}
}

// FuzzScanFrame feeds frames to the bench client's frame handler, which
// recognises event, reply and pong frames by their prefix and reads
// positions, reply ids and message markers without decoding the JSON.
//
// Properties: never panics, on any bytes; and on any frame as the server
// encodes it (every input that decodes as a frame is re-encoded that
// way and handled too), what the scanner reads agrees with encoding/json:
// the event's position, whether it is one of this run's deliveries (room,
// sender, seq), whether a reply acknowledges send seq N or is a
// request's reply, and a resumed frame's count of replayed events.
func FuzzScanFrame(f *testing.F) {
	for _, b := range frameSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		scan(b, 5)
		var fr protocol.Frame
		if json.Unmarshal(b, &fr) != nil {
			return
		}
		cb, ev := canonical(fr)
		if cb == nil {
			return
		}
		switch fr.Type {
		case protocol.TypeEvent:
			checkEvent(t, cb, ev)
		case protocol.TypeReply:
			checkReply(t, cb, fr.ID)
		case protocol.TypeResumed:
			var r protocol.Resumed
			if json.Unmarshal(fr.Data, &r) != nil {
				return
			}
			want := scanned{resumes: 1, replayed: int64(r.Count)}
			if got := scan(cb, 5); got != want {
				t.Fatalf("resumed %s:\nscanner %+v\njson    %+v", cb, got, want)
			}
		case protocol.TypePong:
			if got := scan(cb, 5); got != (scanned{}) {
				t.Fatalf("pong %s: scanner did %+v", cb, got)
			}
		}
	})
}

func checkEvent(t *testing.T, cb []byte, ev *parley.Event) {
	if ev.Shard < 0 {
		return // not a frame a server writes (shards are 0 to 255)
	}
	var want scanned
	if ev.Pos > 0 {
		want.cursor = fmt.Sprint(map[int]int64{ev.Shard: ev.Pos})
	}
	if m := ev.Message; m != nil {
		fields, parsed, ours := markerFields(m.Text)
		switch {
		case !ours:
		case ev.Type != parley.EventNewMessage:
			// The bench never deletes or renames during a run, so only
			// newMessage frames carry its marker; the scanner does not
			// look at the type.
			return
		case !parsed:
			want.protoErrors = 1
		case fields[2] > 1<<20:
			return // a valid delivery, but its receive bitset would be huge
		case fields[0] == 3 && fields[1] >= 0 && fields[1] < 4 && fields[2] >= 0 && fields[2] <= math.MaxUint32:
			want.delivered = 1
		default:
			want.unexpected = 1
		}
	} else if c := ev.Conversation; c != nil && c.LastMessage != nil && strings.HasPrefix(c.LastMessage.Text, "pb|"+fuzzRunID+"|") {
		return // as above: not a frame a bench run sees
	}
	if got := scan(cb, 5); got != want {
		t.Fatalf("event %s:\nscanner %+v\njson    %+v", cb, got, want)
	}
}

func checkReply(t *testing.T, cb []byte, id string) {
	want := scanned{replies: 1}
	pending := uint32(5)
	if len(id) > 1 && id[0] == 's' {
		// The bench's send ids: an ack of seq N, or nothing to do.
		want = scanned{}
		if seq, err := strconv.ParseUint(id[1:], 10, 32); err == nil {
			pending = uint32(seq)
			want = scanned{acked: 1, ackedSeq: pending}
		}
	}
	if got := scan(cb, pending); got != want {
		t.Fatalf("reply %s (id %q):\nscanner %+v\njson    %+v", cb, id, got, want)
	}
}
