package server_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/postgres"
	"github.com/parleychat/parley/internal/postgres/pgtest"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
)

// TestDownloadChunkedReads, on each store: a download reads from the
// store only the bytes it sends, a chunk (server.DownloadChunk) at a
// time. A whole download reads each byte once, in chunks, and is
// byte-identical (sha256) to the upload; a one-byte range reads that
// byte; a multi-range answer is right, part by part (one across a chunk
// boundary), and reads less than the file. Before, any answer with a
// body read the whole attachment, a one-byte range included.
func TestDownloadChunkedReads(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var reads, read atomic.Int64
			open := func(ctx context.Context, dir string) (parley.Store, error) {
				return sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
			}
			if engine == "postgres" {
				dsn := pgtest.Schema(t)
				open = func(ctx context.Context, _ string) (parley.Store, error) { return postgres.Open(ctx, dsn) }
			}
			srv := servertest.Start(t, servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
				st, err := open(ctx, dir)
				return readCountingStore{Store: st, reads: &reads, bytes: &read}, err
			}))
			tok := srv.Token(t, "alice", "Alice")
			const size = 2*server.DownloadChunk + 12345
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*131>>3 ^ i>>11)
			}
			a := uploadFile(t, srv, tok, "c.bin", data)
			u := srv.URL + a.URL
			since := func() (calls, n int64) { return reads.Swap(0), read.Swap(0) }

			full := servertest.Do(t, "GET", u, tok, nil)
			calls, n := since()
			if full.Status != 200 || sha256.Sum256(full.Body) != sha256.Sum256(data) {
				t.Fatalf("GET: %d, %d bytes, not the file's sha256", full.Status, len(full.Body))
			}
			if want := int64((size + server.DownloadChunk - 1) / server.DownloadChunk); calls != want || n != size {
				t.Errorf("a whole download read %d bytes in %d reads; want %d in %d (a chunk each)", n, calls, size, want)
			}

			r := servertest.Do(t, "GET", u, tok, nil, "Range", "bytes=1500000-1500000")
			_, n = since()
			if r.Status != 206 || !bytes.Equal(r.Body, data[1500000:1500001]) {
				t.Errorf("one-byte range: %d %q, want 206 and its byte", r.Status, r.Body)
			}
			// io.CopyN, which sends a range, reads it with a buffer of
			// its length: one byte.
			if n != 1 {
				t.Errorf("a one-byte range read %d bytes from the store, want 1", n)
			}

			ranges := [][2]int{{0, 9}, {server.DownloadChunk - 6, server.DownloadChunk + 14}, {1500000, 1600000}, {size - 5, size - 1}}
			spec := "bytes="
			for i, rg := range ranges {
				if i > 0 {
					spec += ","
				}
				spec += fmt.Sprintf("%d-%d", rg[0], rg[1])
			}
			r = servertest.Do(t, "GET", u, tok, nil, "Range", spec)
			_, n = since()
			mt, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
			if r.Status != 206 || mt != "multipart/byteranges" {
				t.Fatalf("Range %s: %d %q, want 206 multipart/byteranges", spec, r.Status, r.Header.Get("Content-Type"))
			}
			mr := multipart.NewReader(bytes.NewReader(r.Body), params["boundary"])
			for _, rg := range ranges {
				p, err := mr.NextPart()
				if err != nil {
					t.Fatalf("Range %s: %v", spec, err)
				}
				got, _ := io.ReadAll(p)
				if want := fmt.Sprintf("bytes %d-%d/%d", rg[0], rg[1], size); !bytes.Equal(got, data[rg[0]:rg[1]+1]) || p.Header.Get("Content-Range") != want {
					t.Errorf("Range %s: a part of %d bytes, %s; want %s", spec, len(got), p.Header.Get("Content-Range"), want)
				}
			}
			if _, err := mr.NextPart(); err != io.EOF {
				t.Errorf("Range %s: a part more (%v)", spec, err)
			}
			if n >= size {
				t.Errorf("four ranges (%d bytes in all) read %d bytes from the store, the whole file's worth", 10+21+100001+5, n)
			}
		})
	}
}

// TestHostileRangeDownloadsBounded: four users each ask for a 12 MiB
// file three times at once with large ranges (a suffix, an open end, two
// ranges in one), and read none of the answers: each user's first is
// served and holds one chunk (and the store's copy of the next while it
// reads it: server.DownloadHold), the others are refused 503 for the
// user's share (a quarter of the room: one download), and the server's
// heap grows by no more than the download room and a little. Before,
// an answer with a body held the whole attachment, range or not (12 MiB
// per served download, however small the room).
func TestHostileRangeDownloadsBounded(t *testing.T) {
	const (
		size  = 12 << 20
		users = 4
		each  = 3
		room  = users * server.DownloadHold
	)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.DownloadBytes = room
		c.Uploads.DecodeWait = 1 // 1 ns: a download with no room is refused at once
		c.HTTP.ReadTimeout, c.HTTP.WriteTimeout = 2*hangGuard, 2*hangGuard
	}))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7919 >> 5)
	}
	toks, ids := make([]string, users), make([]string, users)
	for i := range users {
		toks[i] = srv.Token(t, fmt.Sprintf("mallory%d", i), fmt.Sprintf("Mallory %d", i))
		ids[i] = uploadFile(t, srv, toks[i], "big.bin", data).ID
	}
	ranges := []string{"bytes=-10000000", "bytes=1000000-", "bytes=0-99,2000000-"}

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var (
		mu       sync.Mutex
		statuses = map[int]int{}
		wg       sync.WaitGroup
	)
	for i := range users {
		for _, rg := range ranges[:each] {
			c := dialTCP(t, srv, "")
			c.(*net.TCPConn).SetReadBuffer(4096) // the smallest window: the server's write blocks
			wg.Go(func() {                       // owned by the test: the answer's head comes at once
				fmt.Fprintf(c, "GET /v1/attachments/%s HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\nRange: %s\r\n\r\n", ids[i], toks[i], rg)
				c.SetReadDeadline(time.Now().Add(hangGuard))
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				status := -1
				if err == nil {
					status = resp.StatusCode
				}
				mu.Lock()
				statuses[status]++
				mu.Unlock()
				// The body is not read: a served download stays blocked
				// in its write, holding what it holds, until the test ends.
			})
		}
	}
	wg.Wait()
	// The served downloads go on reading chunks until the socket
	// buffers are full, and a read's chunk allocated after a GC counts
	// as held until the next: the least of a few samples is what they
	// hold once blocked (a download holding its whole file would hold
	// it in every sample).
	held := int64(math.MaxInt64)
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		runtime.GC()
		runtime.ReadMemStats(&ms)
		held = min(held, int64(ms.HeapAlloc)-int64(base))
	}
	t.Logf("%d range downloads of a %d MiB file, unread: statuses %v; heap +%d KiB (room %d KiB)", users*each, size>>20, statuses, held>>10, room>>10)
	if statuses[206] != users || statuses[503] != users*(each-1) {
		t.Errorf("statuses %v; want %d served (206) and %d refused (503)", statuses, users, users*(each-1))
	}
	if held > room+room/4 {
		t.Errorf("the heap holds %d KiB more during the unread downloads; want at most the room, %d KiB, and a little", held>>10, room>>10)
	}
}
