package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/parleychat/parley"
)

// BenchHiddenRun measures what a run of messages hidden from the reader
// costs the reads that leave them out: a group where the reader blocked
// the only writer, grown to 1000, 10,000 and 40,000 messages; at each
// size the reader's conversation list ("list"), newest history page
// ("history") and a read of their events from before the run, as a
// resume's first page asks (EventsFor, resumePageMin 16 events:
// "replay"). They read a bounded window (parley.ListWindow,
// parley.HistoryWindow, parley.ReplayScan), so their cost should not
// grow with the run. "replay-all" pages through the whole run by
// EventsPage.Next, as a resume does: its cost grows with the run, one
// bounded read per ReplayScan events. Engines call it from their own
// benchmarks with a new store.
func BenchHiddenRun(b *testing.B, s parley.Store) {
	ctx := b.Context()
	reader, err := s.EnsureUser(ctx, "hidden-reader", "hidden-reader")
	if err != nil {
		b.Fatal(err)
	}
	writer, err := s.EnsureUser(ctx, "hidden-writer", "hidden-writer")
	if err != nil {
		b.Fatal(err)
	}
	g, _, err := s.CreateGroup(ctx, writer.ID, "G", []string{reader.ID})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.(parley.Consenter).Block(ctx, reader.ID, writer.ID); err != nil {
		b.Fatal(err)
	}
	from, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	ms := s.(parley.MultiSender)
	sent := 0
	for _, size := range []int{1000, 10000, 40000} {
		var nms []parley.NewMessage
		for ; sent < size; sent++ {
			nms = append(nms, parley.NewMessage{ConversationID: g.ID, SenderID: writer.ID,
				ClientID: fmt.Sprint("h", sent), Type: parley.Text, Text: "hidden"})
		}
		for chunk := range slices.Chunk(nms, 4000) {
			ms.SendMessages(ctx, chunk, func(i int, _ parley.Message, _ []parley.Event, err error) {
				if err != nil {
					b.Fatalf("send %d: %v", i, err)
				}
			})
		}
		b.Run(fmt.Sprint("list/", size), func(b *testing.B) {
			for b.Loop() {
				if cs, err := s.Conversations(ctx, reader.ID); err != nil || len(cs) != 1 || cs[0].UnreadCount != 0 {
					b.Fatalf("%+v, %v", cs, err)
				}
			}
		})
		b.Run(fmt.Sprint("history/", size), func(b *testing.B) {
			for b.Loop() {
				if p, err := s.Messages(ctx, reader.ID, g.ID, parley.MessageQuery{}); err != nil || len(p.Messages) != 0 {
					b.Fatalf("%d messages, %v", len(p.Messages), err)
				}
			}
		})
		b.Run(fmt.Sprint("replay/", size), func(b *testing.B) {
			for b.Loop() {
				if p, err := s.EventsFor(ctx, reader.ID, from, 16); err != nil || len(p.Events) != 0 {
					b.Fatalf("%d events, %v", len(p.Events), err)
				}
			}
		})
		b.Run(fmt.Sprint("replay-all/", size), func(b *testing.B) {
			reads := 0
			for b.Loop() {
				for after := from; ; {
					reads++
					p, err := s.EventsFor(ctx, reader.ID, after, 16)
					if err != nil || len(p.Events) != 0 {
						b.Fatalf("%d events, %v", len(p.Events), err)
					}
					if p.Through == 0 {
						break
					}
					after = p.Through
				}
			}
			b.ReportMetric(float64(reads)/float64(b.N), "reads/op")
		})
	}
}
