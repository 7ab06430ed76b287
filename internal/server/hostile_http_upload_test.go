package server_test

import (
	"bufio"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parleychat/parley/internal/media/mediatest"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
)

// TestHostileImageBodiesBounded: image uploads whose bodies stall just
// short of their end are received Files at a time, like file uploads;
// the rest are refused 503 before their bodies are read, and the heap
// holds about Files bodies, not one per request. Before, POST /v1/uploads
// read every body (up to 10 MiB each) with no slot: 16 stalled uploads
// held 16 bodies, and more connections held more.
func TestHostileImageBodiesBounded(t *testing.T) {
	const (
		uploads = 16
		slots   = 2
		sent    = 4 << 20 // bytes of each body sent before it stalls
	)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.Files, c.Uploads.DecodeWait = slots, 1 // 1 ns: a request with no free slot is refused at once
		// The stalled bodies are cut off by ReadTimeout, which ends the test.
		c.HTTP.ReadTimeout, c.HTTP.WriteTimeout = 3*time.Second, 4*time.Second
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	// A PNG signature, then noise: the server learns it is no image only
	// once it has the body, which never ends.
	body := make([]byte, sent)
	copy(body, "\x89PNG\r\n\x1a\n")
	for i := 8; i < len(body); i++ {
		body[i] = byte(i * 7919 >> 3)
	}
	statuses := make([]int, uploads)
	// A collector at 10%: the heap counts little garbage besides what
	// the server holds.
	peak, _ := mediatest.HeapPeak(10, time.Millisecond, func() {
		var wg sync.WaitGroup
		for i := range uploads {
			c := dialTCP(t, srv, "")
			wg.Go(func() { // owned by the test: the server ends every request within ReadTimeout
				fmt.Fprintf(c, "POST /v1/uploads HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\n"+
					"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n", tok, sent+1)
				go c.Write(body) // may block on a request that is not read; it fails when c closes
				c.SetReadDeadline(time.Now().Add(hangGuard))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					statuses[i] = -1 // closed without an answer
					return
				}
				resp.Body.Close()
				statuses[i] = resp.StatusCode
				c.Close()
			})
		}
		wg.Wait()
	})
	refused := 0
	for _, s := range statuses {
		if s == http.StatusServiceUnavailable {
			refused++
		}
	}
	t.Logf("%d stalled image uploads at once: statuses %v; heap +%d MiB", uploads, statuses, peak>>20)
	if refused != uploads-slots {
		t.Errorf("%d of %d stalled uploads refused 503 with %d receiving slots, want %d", refused, uploads, slots, uploads-slots)
	}
	// Two bodies being read (4 MiB each, and up to as much again while
	// io.ReadAll grows its buffer), not sixteen (64 MiB and more).
	if peak > 40<<20 {
		t.Errorf("the heap rose by %d MiB for %d stalled uploads; want about %d bodies' worth", peak>>20, uploads, slots)
	}
	stillServes(t, srv)
}
