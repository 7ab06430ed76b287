package server_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleychat/parley"
	"github.com/parleychat/parley/internal/media/mediatest"
	"github.com/parleychat/parley/internal/server"
	"github.com/parleychat/parley/internal/servertest"
	"github.com/parleychat/parley/internal/sqlite"
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

// TestHostileDownloadBytesBounded: a user downloads their own 8 MiB file
// on 10 connections at once and never reads the answers, so each
// download blocks in its write (a socket buffer holds 4 MiB at most).
// With a share for two downloads (a quarter of Uploads.DownloadBytes:
// a download holds a chunk of its file and the store's copy of the
// next, server.DownloadHold), two are served and hold that; the others
// are refused 503 with Retry-After without holding anything, and the
// heap holds about two downloads' worth, less than one file. Before, every download held its whole file
// until WriteTimeout: 10 connections held 80 MiB, and 64 connections
// per IP could hold 1.6 GiB; and, later, a download held its whole file
// still, room reserved for it (the room was then two files).
func TestHostileDownloadBytesBounded(t *testing.T) {
	const (
		conns = 10
		size  = 8 << 20
		room  = 2
	)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		// Her share, a quarter of the room: two downloads.
		c.Uploads.DownloadBytes = 4 * room * server.DownloadHold
		c.Uploads.DecodeWait = 1 // 1 ns: a download with no room is refused at once
		// Long enough that no served download times out before the
		// test has measured: ten 8 MiB reads from SQLite take seconds
		// under the race detector.
		c.HTTP.ReadTimeout, c.HTTP.WriteTimeout = 2*hangGuard, 2*hangGuard
	}))
	tok := srv.Token(t, "mallory", "Mallory")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7919 >> 5)
	}
	a := uploadFile(t, srv, tok, "big.bin", data)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	statuses := make([]int, conns)
	var retryAfter []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range conns {
		c := dialTCP(t, srv, "")
		c.(*net.TCPConn).SetReadBuffer(4096) // the smallest window: the server's write blocks
		wg.Go(func() {                       // owned by the test: the answer's head comes at once
			fmt.Fprintf(c, "GET /v1/attachments/%s HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\n\r\n", a.ID, tok)
			c.SetReadDeadline(time.Now().Add(hangGuard))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Logf("download %d: %v", i, err)
				statuses[i] = -1
				return
			}
			statuses[i] = resp.StatusCode
			if resp.StatusCode == http.StatusServiceUnavailable {
				mu.Lock()
				retryAfter = append(retryAfter, resp.Header.Get("Retry-After"))
				mu.Unlock()
			}
			// The body is not read: a served download stays blocked in
			// its write, holding what it holds, until the test ends.
		})
	}
	wg.Wait()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(ms.HeapAlloc) - int64(base)
	served := 0
	for _, s := range statuses {
		if s == http.StatusOK {
			served++
		}
	}
	t.Logf("%d downloads of %d MiB at once, unread: statuses %v; heap +%d MiB", conns, size>>20, statuses, held>>20)
	if served != room || len(retryAfter) != conns-room || slices.Contains(retryAfter, "") {
		t.Errorf("served %d, refused %d (Retry-After %q); want %d served and the rest 503 with Retry-After", served, len(retryAfter), retryAfter, room)
	}
	// Two downloads' chunks held (4 MiB at most), not two files (16
	// MiB), nor ten (80 MiB).
	if held >= size {
		t.Errorf("the heap holds %d MiB more during %d unread downloads of %d MiB; want about %d downloads' worth, less than a file", held>>20, conns, size>>20, room)
	}
}

// TestDownloadWaitsForRoom: a download with no room waits (holding
// nothing), and once the download that filled the room ends it loads
// the attachment and serves it whole. The two are of different users:
// one user's second download would be refused at once for their share
// (TestHostileDownloadShare), whether the first had ended yet or not.
func TestDownloadWaitsForRoom(t *testing.T) {
	const size = 8 << 20
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.DownloadBytes = server.DownloadHold // room for one download
		c.Uploads.DecodeWait = hangGuard
	}))
	atok, btok := srv.Token(t, "alice", "Alice"), srv.Token(t, "bob", "Bob")
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 31 >> 4)
	}
	aa, ba := uploadFile(t, srv, atok, "big.bin", data), uploadFile(t, srv, btok, "big.bin", data)
	first := dialTCP(t, srv, "")
	first.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(first, "GET /v1/attachments/%s HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\n\r\n", aa.ID, atok)
	first.SetReadDeadline(time.Now().Add(hangGuard))
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("first download: %v %v", resp, err)
	}
	// Alice's holds the room, unread; bob's waits for it.
	second := make(chan rawResp, 1)
	go func() { second <- rawDo(t, "GET", srv.URL+"/v1/attachments/"+ba.ID, btok, "", nil) }()
	time.Sleep(100 * time.Millisecond) // bob's is most likely waiting by now (either way it must be served)
	first.Close()
	r := <-second
	if r.status != http.StatusOK || !bytes.Equal(r.body, data) {
		t.Fatalf("bob's download: %d, %d bytes %.200s; want 200 and the file", r.status, len(r.body), r.body)
	}
}

// TestHostileDownloadShare: one user's unread downloads hold at most
// their share of the node's download room (a quarter, or one download's
// download's hold where more): past it theirs are refused at once, 503 with
// Retry-After, and another user's download is still served. Before,
// mallory's four stalled downloads took all the room and alice's was
// refused. (The room is counted in server.DownloadHold since downloads
// hold a chunk each, not their file: room for four, a share of one.)
func TestHostileDownloadShare(t *testing.T) {
	const (
		size   = 8 << 20
		stalls = 4
	)
	srv := servertest.Start(t, servertest.WithConfig(func(c *server.Config) {
		c.Uploads.DownloadBytes = stalls * server.DownloadHold // room for all four
		c.Uploads.MaxFileBytes = 10 << 20                      // the share: max(1/4 of the room, DownloadHold): one download
		c.Uploads.DecodeWait = 1                               // 1 ns: no room is a refusal at once
		c.HTTP.ReadTimeout, c.HTTP.WriteTimeout = 2*hangGuard, 2*hangGuard
	}))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 131 >> 3)
	}
	mtok, atok := srv.Token(t, "mallory", "Mallory"), srv.Token(t, "alice", "Alice")
	ma, aa := uploadFile(t, srv, mtok, "m.bin", data), uploadFile(t, srv, atok, "a.bin", data)

	var statuses []int
	var retryAfter []string
	for range stalls {
		c := dialTCP(t, srv, "")
		c.(*net.TCPConn).SetReadBuffer(4096) // the server's write blocks: the download stays
		fmt.Fprintf(c, "GET /v1/attachments/%s HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\n\r\n", ma.ID, mtok)
		c.SetReadDeadline(time.Now().Add(hangGuard))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("mallory's download: %v", err)
		}
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusServiceUnavailable {
			retryAfter = append(retryAfter, resp.Header.Get("Retry-After"))
		}
	}
	if want := []int{200, 503, 503, 503}; !slices.Equal(statuses, want) || slices.Contains(retryAfter, "") {
		t.Errorf("mallory's %d unread downloads: %v (Retry-After %q), want %v with Retry-After", stalls, statuses, retryAfter, want)
	}
	r := rawDo(t, "GET", srv.URL+"/v1/attachments/"+aa.ID, atok, "", nil)
	if r.status != http.StatusOK || !bytes.Equal(r.body, data) {
		t.Fatalf("alice's download while mallory's stall: %d, %d bytes; want 200 and her file", r.status, len(r.body))
	}
}

// readCountingStore counts the calls that read attachment bytes
// (ReadAttachment, and AttachmentData, which the server does not call)
// in reads, and the bytes they read in bytes (when set), of every
// attachment but skip's (when set). Safe for concurrent use.
type readCountingStore struct {
	parley.Store
	reads *atomic.Int64
	bytes *atomic.Int64
	skip  *atomic.Pointer[string]
}

func (s readCountingStore) count(id string, n int) {
	if s.skip != nil && s.skip.Load() != nil && *s.skip.Load() == id {
		return
	}
	s.reads.Add(1)
	if s.bytes != nil {
		s.bytes.Add(int64(n))
	}
}

func (s readCountingStore) AttachmentData(ctx context.Context, userID, id string, thumb bool) (parley.Attachment, []byte, error) {
	a, data, err := s.Store.AttachmentData(ctx, userID, id, thumb)
	s.count(id, len(data))
	return a, data, err
}

func (s readCountingStore) ReadAttachment(ctx context.Context, userID, id string, thumb bool, off int64, p []byte) (int, error) {
	n, err := s.Store.ReadAttachment(ctx, userID, id, thumb, off, p)
	s.count(id, n)
	return n, err
}

// TestHostileRefusedDownloadsReadNothing: a download refused for the
// user's share or the node's room loads none of the attachment's bytes,
// nor does a signed link's access check, and an outsider gets the 404 an
// unknown id gets even while the room is full. Before, every download
// loaded its whole attachment from the store before it was refused: a
// burst of refused downloads of large files read each into memory.
// (Mallory's download that holds the room is of another file than the
// refused ones, whose reads are the ones counted: it reads a chunk at a
// time as its client takes them, when the server gets to it.)
func TestHostileRefusedDownloadsReadNothing(t *testing.T) {
	const (
		size    = 8 << 20
		refused = 5
	)
	var (
		reads atomic.Int64
		stall atomic.Pointer[string]
	)
	srv := servertest.Start(t,
		servertest.WithStore(func(ctx context.Context, dir string) (parley.Store, error) {
			db, err := sqlite.Open(ctx, filepath.Join(dir, "parley.db"))
			return readCountingStore{Store: db, reads: &reads, skip: &stall}, err
		}),
		servertest.WithConfig(func(c *server.Config) {
			c.Uploads.DownloadBytes = server.DownloadHold // room for one download
			c.Uploads.MaxFileBytes = 10 << 20             // the share: all the room
			c.Uploads.DecodeWait = 1                      // 1 ns: no room is a refusal at once
			c.HTTP.ReadTimeout, c.HTTP.WriteTimeout = 2*hangGuard, 2*hangGuard
		}))
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 131 >> 3)
	}
	mtok, atok, etok := srv.Token(t, "mallory", "Mallory"), srv.Token(t, "alice", "Alice"), srv.Token(t, "eve", "Eve")
	ma, aa := uploadFile(t, srv, mtok, "m.bin", data), uploadFile(t, srv, atok, "a.bin", data)
	ms := uploadFile(t, srv, mtok, "stall.bin", data)
	stall.Store(&ms.ID)

	// Mallory's download holds all the room, unread.
	c := dialTCP(t, srv, "")
	c.(*net.TCPConn).SetReadBuffer(4096) // the server's write blocks: the download stays
	fmt.Fprintf(c, "GET /v1/attachments/%s HTTP/1.1\r\nHost: parley\r\nAuthorization: Bearer %s\r\n\r\n", ms.ID, mtok)
	c.SetReadDeadline(time.Now().Add(hangGuard))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("mallory's first download: %v %v", resp, err)
	}
	// Past her share, and past the node's room: all refused.
	var statuses []int
	for range refused {
		statuses = append(statuses, rawDo(t, "GET", srv.URL+ma.URL, mtok, "", nil).status) // her share
		statuses = append(statuses, rawDo(t, "GET", srv.URL+aa.URL, atok, "", nil).status) // the node's room
	}
	if slices.ContainsFunc(statuses, func(s int) bool { return s != http.StatusServiceUnavailable }) {
		t.Errorf("downloads past the share and the room: %v, want all 503", statuses)
	}
	// A link checks access without reading the bytes.
	if r := httpDo(t, srv, "POST", aa.URL+"/link", atok, ""); r.status != 200 {
		t.Errorf("alice's link: %d", r.status)
	}
	// An outsider learns nothing, the room being full or not.
	unknown := httpDo(t, srv, "GET", "/v1/attachments/0190aaaa-0000-7000-8000-000000000000", etok, "")
	outsider := httpDo(t, srv, "GET", ma.URL, etok, "")
	if outsider.status != 404 || unknown.status != 404 || outsider.err != unknown.err || string(outsider.body) != string(unknown.body) {
		t.Errorf("outsider: %d %s; unknown id: %d %s; want the same 404", outsider.status, outsider.body, unknown.status, unknown.body)
	}
	if n := reads.Load(); n != 0 {
		t.Errorf("%d body reads after %d refused downloads, a link and an outsider's try; want none", n, 2*refused)
	}
}
