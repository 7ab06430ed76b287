package client

import (
	"fmt"
	"testing"

	"github.com/parleychat/parley"
)

// viewModel is one conversation as the server holds it, for FuzzViewApply:
// each seq's message, whether this user may see it, and its events in
// commit order (those this user receives).
type viewModel struct {
	msgs   []parley.Message // by seq - 1
	shown  []bool
	events []Event
}

func (m *viewModel) send(shown bool) {
	seq := int64(len(m.msgs) + 1)
	msg := parley.Message{ID: fmt.Sprint("m", seq), ConversationID: "c1", Seq: seq, SenderID: "bob", Text: fmt.Sprint("text ", seq)}
	m.msgs, m.shown = append(m.msgs, msg), append(m.shown, shown)
	if shown {
		m.events = append(m.events, NewMessage{Message: msg})
	}
}

// change edits (or deletes) the message with seq, when there is one this
// user sees and it is not deleted.
func (m *viewModel) change(seq int64, del bool) {
	if seq < 1 || seq > int64(len(m.msgs)) || !m.shown[seq-1] || m.msgs[seq-1].Deleted {
		return
	}
	x := &m.msgs[seq-1]
	if del {
		x.Deleted, x.Text = true, ""
		m.events = append(m.events, MessageDeleted{Message: *x})
		return
	}
	x.Text += " (edited)"
	m.events = append(m.events, MessageEdited{Message: *x})
}

// page is the newest history page as the server answers it: the newest
// size messages this user sees, oldest first, and whether older ones are.
func (m *viewModel) page(size int) (msgs []parley.Message, hasMore bool) {
	for i := len(m.msgs) - 1; i >= 0; i-- {
		if !m.shown[i] {
			continue
		}
		if len(msgs) == size {
			return msgs, true
		}
		msgs = append([]parley.Message{m.msgs[i]}, msgs...)
	}
	return msgs, false
}

// FuzzViewApply: a ConversationView loaded from a page and fed the live
// events from some point before that page was read (events in flight
// while it was read arrive after it too) holds exactly the messages this
// user sees from its oldest on, each as it is now, in seq order, with no
// fetch: the seqs hidden from this user leave no gap to fill.
func FuzzViewApply(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 2, 3, 0, 1, 1, 4, 0, 5}, uint8(3), uint8(1))
	f.Add([]byte{1, 1, 1, 0, 0, 0, 2, 0, 3, 1, 4, 2}, uint8(2), uint8(4))
	f.Fuzz(func(t *testing.T, ops []byte, pageSize, overlap uint8) {
		size := int(pageSize%8) + 1
		var m viewModel
		step := func(b byte, arg byte) {
			switch b % 5 {
			case 0, 1:
				m.send(true)
			case 2:
				m.send(false)
			case 3:
				m.change(int64(arg)%int64(len(m.msgs)+1), false)
			case 4:
				m.change(int64(arg)%int64(len(m.msgs)+1), true)
			}
		}
		half := len(ops) / 2 &^ 1
		for i := 0; i+1 < half; i += 2 {
			step(ops[i], ops[i+1])
		}
		// The page is read now; the view hears the events from some
		// before it (in flight during the read) and all after.
		msgs, hasMore := m.page(size)
		from := max(0, len(m.events)-int(overlap%6))
		for i := half; i+1 < len(ops); i += 2 {
			step(ops[i], ops[i+1])
		}

		c, err := New("http://127.0.0.1:1", WithToken("t"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		v := &ConversationView{c: c, id: "c1", pageSize: size, syncing: true}
		v.buf = append(v.buf, m.events[from:from+min(len(m.events)-from, 1)]...) // one came during the read
		v.msgs, v.hasMore = msgs, hasMore
		v.finishSync()
		for _, ev := range m.events[from+min(len(m.events)-from, 1):] {
			v.apply(ev)
		}
		if v.syncing || v.err != nil || len(v.buf) != 0 {
			t.Fatalf("view syncing %v, err %v, %d buffered: live events need no fetch", v.syncing, v.err, len(v.buf))
		}

		var want []parley.Message
		oldest := int64(1 << 62)
		if len(msgs) > 0 {
			oldest = msgs[0].Seq
		} else if hasMore {
			t.Fatal("an empty page with older messages")
		} else {
			oldest = 0
		}
		for i, x := range m.msgs {
			if m.shown[i] && x.Seq >= oldest {
				want = append(want, x)
			}
		}
		got := v.Messages()
		if len(got) != len(want) {
			t.Fatalf("view holds %d messages, want %d:\n got %v\nwant %v", len(got), len(want), got, want)
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || got[i].Text != want[i].Text || got[i].Deleted != want[i].Deleted {
				t.Fatalf("message %d: %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}
