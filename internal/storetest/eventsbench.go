package storetest

import (
	"fmt"
	"sync"
	"testing"

	"github.com/parleychat/parley"
)

// BenchEventsFor measures the read of a resume with nothing hidden. A
// user in 4 of 8 busy groups (8 members each; they left the other 4),
// 20,000 messages over the 8, asks for the events after a position:
// "1000 missed" is the resume target's case (the last 1000 of the log),
// "far behind" a client 20k events back that gets the first page of
// ResumeLimit+1 (the server then tells it to resync), "few missed" a
// reconnect after a blip. Engines call it from their own benchmarks with
// a new store.
func BenchEventsFor(b *testing.B, s parley.Store) {
	ctx := b.Context()
	ids := make([]string, 8)
	for i := range ids {
		u, err := s.EnsureUser(ctx, fmt.Sprint("events-user", i), fmt.Sprint("events-user", i))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = u.ID
	}
	reader, writer := ids[0], ids[1]
	var groups []parley.Conversation
	for i := range 8 {
		members := ids[2:]
		if i%2 == 0 {
			members = ids[1:]
		}
		g, _, err := s.CreateGroup(ctx, writer, fmt.Sprint("G", i), append([]string{reader}, members...))
		if err != nil {
			b.Fatal(err)
		}
		groups = append(groups, g)
		if i%2 == 1 { // the reader leaves odd ones: windows that end
			if _, _, err := s.UpdateConversation(ctx, reader, g.ID, parley.ConversationChange{Remove: []string{reader}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	// 20k messages over the 8 groups, sent concurrently so they batch.
	const total = 20000
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < total; i += 64 {
				_, _, err := s.SendMessage(ctx, parley.NewMessage{ConversationID: groups[i%8].ID, SenderID: writer,
					ClientID: fmt.Sprint("m", i), Type: parley.Text, Text: "history"})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	head, err := s.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		after int64
	}{{"few missed", head - 10}, {"1000 missed", head - 2000}, {"far behind", 0}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				evs, err := s.EventsFor(ctx, reader, c.after, parley.ResumeLimit+1)
				if err != nil {
					b.Fatal(err)
				}
				n = len(evs.Events)
			}
			b.ReportMetric(float64(n), "events")
		})
	}
}
