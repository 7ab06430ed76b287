package client_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/client"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestPromise is the product's promise under fire: 20 clients in 5
// conversations each send 200 messages while the proxy cuts every
// connection at random every 50-500 ms and the server restarts twice on
// the same data. Every client must end with every message of its
// conversation exactly once, in order; every Send must end Sent; every
// outbox must be empty.
func TestPromise(t *testing.T) {
	if testing.Short() {
		t.Skip("long-running")
	}
	if raceOn && os.Getenv("PARLEY_PROMISE_RACE") == "" {
		t.Skip("too slow under -race on a shared 2-core machine (see race_on_test.go): run `go test -run TestPromise ./client/`, or set PARLEY_PROMISE_RACE=1")
	}
	const (
		groups  = 5
		perConv = 4
		perUser = 200
	)
	e := newEnv(t, servertest.WithConfig(func(c *server.Config) { c.ReconnectAfter = 100 * time.Millisecond }))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	type member struct {
		id   string
		c    *client.Client
		rec  *recorder
		conv string
	}
	var members []*member
	for g := 0; g < groups; g++ {
		ids := make([]string, perConv)
		for i := range ids {
			ids[i] = fmt.Sprintf("u%d-%d", g, i)
			e.srv.Token(t, ids[i], ids[i]) // creates the user
		}
		cv, _, err := e.srv.Store.CreateGroup(ctx, ids[0], fmt.Sprintf("group %d", g), ids[1:])
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			c := e.client(t, id)
			members = append(members, &member{id: id, c: c, rec: record(c), conv: cv.ID})
		}
	}
	for _, m := range members {
		connect(t, m.c)
	}

	// Chaos: cut every connection every 50-500 ms until the end.
	stopChaos := make(chan struct{})
	var chaos sync.WaitGroup
	chaos.Add(1)
	go func() { // owned by the test: stopped and waited for below
		defer chaos.Done()
		for {
			select {
			case <-stopChaos:
				return
			case <-time.After(chaosDelay()):
				e.proxy.CutAll()
			}
		}
	}()

	var sentCount atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(members))
	for _, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out []*client.Message
			for i := 0; i < perUser; i++ {
				msg, err := m.c.Send(ctx, m.conv, m.id+" "+strconv.Itoa(i))
				if err != nil {
					errs <- fmt.Errorf("%s: send %d: %w", m.id, i, err)
					return
				}
				out = append(out, msg)
			}
			for i, msg := range out {
				if _, err := msg.Wait(ctx); err != nil {
					errs <- fmt.Errorf("%s: message %d ended %v: %w", m.id, i, msg.Status(), err)
					return
				}
				sentCount.Add(1)
			}
		}()
	}

	// Two restarts while messages flow.
	total := int64(len(members) * perUser)
	for _, at := range []int64{total / 3, 2 * total / 3} {
		for sentCount.Load() < at && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		e.srv.Restart(t)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		close(stopChaos)
		chaos.Wait()
		accepted, cut := e.proxy.Stats()
		t.Logf("proxy: %d connections, %d cut", accepted, cut)
		return
	}
	// Let the last events arrive with the chaos still on, then stop it.
	for _, m := range members {
		m.rec.waitFor(t, m.id+" has every message", func(evs []client.Event) bool {
			n := 0
			for _, ev := range evs {
				if _, ok := ev.(client.NewMessage); ok {
					n++
				}
			}
			return n >= perConv*perUser
		})
	}
	close(stopChaos)
	chaos.Wait()

	for _, m := range members {
		got := m.rec.messages()[m.conv]
		if len(got) != perConv*perUser {
			t.Errorf("%s: %d messages, want %d", m.id, len(got), perConv*perUser)
			continue
		}
		last := map[string]int{}
		for i, msg := range got {
			if msg.Seq != int64(i+1) {
				t.Errorf("%s: message %d has seq %d (duplicate, gap or reorder)", m.id, i, msg.Seq)
				break
			}
			sender, n := parseText(t, msg)
			if prev, ok := last[sender]; ok && n != prev+1 || !ok && n != 0 {
				t.Errorf("%s: from %s: %d after %d", m.id, sender, n, prev)
				break
			}
			last[sender] = n
		}
		if p := m.c.Pending(); len(p) != 0 {
			t.Errorf("%s: %d messages still in the outbox", m.id, len(p))
		}
	}
	accepted, cut := e.proxy.Stats()
	t.Logf("proxy: %d connections, %d cut; 2 server restarts", accepted, cut)
}

func parseText(t *testing.T, m parley.Message) (string, int) {
	sender, num, ok := strings.Cut(m.Text, " ")
	n, err := strconv.Atoi(num)
	if !ok || err != nil {
		t.Fatalf("bad text %q", m.Text)
	}
	return sender, n
}

// chaosDelay is the time to the next cut: 50-500 ms. NOCHAOS=1 turns cuts
// off, to measure the baseline.
func chaosDelay() time.Duration {
	if os.Getenv("NOCHAOS") != "" {
		return time.Hour
	}
	return time.Duration(50+rand.IntN(451)) * time.Millisecond
}
