package server

import (
	"bytes"
	"encoding/json"
	"sync"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/protocol"
)

// encodeEvent encodes an event frame once for every receiver: around
// ev.Data when the event carries it (made by eventData, on this node or
// the one that published it), else from the event.
func encodeEvent(ev parley.Event) []byte {
	if ev.Data != nil {
		return frameAround(protocol.TypeEvent, "", ev.Data)
	}
	e := encoderPool.Get().(*pooledEncoder)
	defer e.put()
	return frameAround(protocol.TypeEvent, "", e.event(ev))
}

// eventData is parley.Event.Data for ev: the JSON of its event frame's
// data, as encodeEvent writes it.
func eventData(ev parley.Event) []byte {
	e := encoderPool.Get().(*pooledEncoder)
	defer e.put()
	return bytes.Clone(e.event(ev))
}

func encodeFrame(f protocol.Frame) []byte {
	b, err := json.Marshal(f)
	if err != nil {
		panic(err)
	}
	return b
}

// encodeData encodes a frame with data v. It writes the frame's bytes
// around v's encoding directly, in protocol.Frame's field order: marshalling
// a Frame holding v as a json.RawMessage would check and copy v's JSON a
// second time.
func encodeData(typ, id string, v any) []byte {
	e := encoderPool.Get().(*pooledEncoder)
	defer e.put()
	return e.frame(typ, id, v)
}

// frame is encodeData with e.
func (e *pooledEncoder) frame(typ, id string, v any) []byte {
	return frameAround(typ, id, e.encode(v))
}

// messageReply is the frame of the reply with id to a send stored as m:
// encodeData(protocol.TypeReply, id, m)'s bytes, written by
// appendMessageJSON (no allocation but the frame's), or when it cannot by
// encoding/json, with m given to the encoder through a pointer e holds (m
// boxed in an any was a copy of the message on the heap per send).
func messageReply(id string, m *parley.Message) []byte {
	e := encoderPool.Get().(*pooledEncoder)
	defer e.put()
	data, ok := appendMessageJSON(e.out[:0], m)
	e.out = data
	if ok {
		return frameAround(protocol.TypeReply, id, data)
	}
	e.msg = *m
	return frameAround(protocol.TypeReply, id, e.encode(&e.msg))
}

// event is the JSON of ev with its attachments' URLs (withURLs), in e's
// buffer: valid until e is used again. appendEventJSON writes the usual
// events (a send's), encoding/json the others.
func (e *pooledEncoder) event(ev parley.Event) []byte {
	e.ev = withURLs(ev)
	data, ok := appendEventJSON(e.out[:0], &e.ev)
	e.out = data
	if ok {
		return data
	}
	// Through a pointer: an Event passed by value would be copied to the
	// heap to box it.
	return e.encode(&e.ev)
}

// encode is the JSON of v in e's buffer, valid until e is used again.
func (e *pooledEncoder) encode(v any) []byte {
	if err := e.enc.Encode(v); err != nil {
		panic(err) // frames hold plain data; this cannot fail
	}
	return bytes.TrimSuffix(e.buf.Bytes(), []byte{'\n'}) // Encode ends with a newline
}

// frameAround writes a frame of type typ and id around data, the JSON of
// its "data".
func frameAround(typ, id string, data []byte) []byte {
	b := make([]byte, 0, len(data)+len(typ)+len(id)+len(`{"type":"","id":"","data":}`)+8)
	b = append(b, `{"type":`...)
	b = appendJSONString(b, typ)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"data":`...)
	b = append(b, data...)
	return append(b, '}')
}

// pooledEncoder is a json.Encoder writing into a buffer of its own:
// encodeData copies its output into the frame, where json.Marshal would
// copy it out once more first.
type pooledEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder // writes to buf; HTML escaped, as json.Marshal
	// ev holds the event being encoded (event), which Encode is given a
	// pointer to.
	ev parley.Event
	// msg holds the message a send's reply encodes (messageReply), for
	// the same reason.
	msg parley.Message
	// out is where appendEventJSON and appendMessageJSON write (the
	// frames of a send), kept for its capacity.
	out []byte
}

var encoderPool = sync.Pool{New: func() any {
	e := &pooledEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// put returns e to the pool, unless it grew large (a long replay page).
func (e *pooledEncoder) put() {
	e.ev, e.msg = parley.Event{}, parley.Message{} // hold no event's or message's data in the pool
	if e.buf.Cap() > 64<<10 || cap(e.out) > 64<<10 {
		return
	}
	e.buf.Reset()
	e.out = e.out[:0]
	encoderPool.Put(e)
}

// pongFrame is the answer to a ping with id.
func pongFrame(id string) []byte {
	b := make([]byte, 0, len(id)+len(`{"type":"pong","id":""}`)+8)
	b = append(b, `{"type":"pong"`...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	return append(b, '}')
}

func errorFrame(s *Server, id string, err error) []byte {
	b := errorBody(s.log, err)
	s.metrics.obs.countError(b.Code)
	return encodeFrame(protocol.Frame{Type: protocol.TypeError, ID: id, Error: b})
}
