package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// The floor scenario measures what the machine allows for fanout's shape
// with no Parley in the way: a writer process holds Conns accepted TCP
// connections and writes small fixed-size frames to them at a total rate
// (one write(2) per frame: what a server pays per delivery at the least),
// and reader workers, split into processes and spread over the loopback
// source addresses like every other scenario, read and count them. Mode
// "ws" puts coder/websocket framing on both ends (the library Parley uses:
// its Write, bufio and flush per message), still without JSON or a store.
//
// The writer is always a child process, so its CPU is its own; every
// process reports its CPU time (getrusage) and the parent divides by the
// frames read.

// Floor modes.
const (
	FloorTCP = "tcp"
	FloorWS  = "ws"
)

// floorFrame builds one frame of size n (at least floorMinFrame): a JSON
// object holding the send time, padded, ending in '\n'. It is text, so
// the same bytes serve as a WebSocket text message.
func floorFrame(buf []byte, n int, sent int64) []byte {
	b := append(buf[:0], `{"t":`...)
	b = strconv.AppendInt(b, sent, 10)
	b = append(b, `,"p":"`...)
	for len(b) < n-3 {
		b = append(b, 'x')
	}
	return append(b, `"}`+"\n"...)
}

// floorMinFrame is the smallest frame floorFrame builds: a 19-digit time
// and the JSON around it.
const floorMinFrame = 33

// floorSent returns the send time in a frame built by floorFrame.
func floorSent(b []byte) (int64, bool) {
	const pre = `{"t":`
	if len(b) < len(pre) || string(b[:len(pre)]) != pre {
		return 0, false
	}
	v, n := parseInt(b[len(pre):])
	return v, n > 0
}

// cpuNS is this process's CPU time (user + system, every thread) in ns.
func cpuNS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// runFloor is Run for the floor scenario: no Parley server.
func runFloor(ctx context.Context, cfg Config, res *Result, logf func(string, ...any)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	res.Server = fmt.Sprintf("floor writer process, %s, %d-byte frames", cfg.Mode, cfg.FrameBytes)

	base := Job{Scenario: "floor", RunID: randomID(), Mode: cfg.Mode, FrameBytes: cfg.FrameBytes,
		SourceAddrs: cfg.SourceAddrs, DialConcurrency: cfg.DialConcurrency}
	wj := base
	wj.Role, wj.Conns, wj.Worker = "writer", cfg.Conns, cfg.Procs
	writer, err := startWorkerIn(ctx, cfg, wj, &wg, true)
	if err != nil {
		return err
	}
	links := []*link{writer}
	defer func() {
		for _, l := range links {
			_ = l.in.Close()
		}
	}()
	wr, err := writer.recv(ctx, "ready")
	if err != nil {
		return err
	}
	logf("floor: writer listening on %s (pid %d); connecting %d clients with %d reader process(es)", wr.Addr, wr.PID, cfg.Conns, cfg.Procs)
	t0 := time.Now()
	readers := make([]*link, cfg.Procs)
	for i := range cfg.Procs {
		j := base
		j.Role, j.Worker, j.Addr = "reader", i, wr.Addr
		j.Conns = part(cfg.Conns, cfg.Procs, i)
		j.FirstUser = i * (cfg.Conns/cfg.Procs + 1) // spreads source addresses between processes
		l, err := startWorkerIn(ctx, cfg, j, &wg, cfg.Procs > 1)
		if err != nil {
			return err
		}
		readers[i] = l
		links = append(links, l)
	}
	for _, l := range readers {
		if _, err := l.recv(ctx, "ready"); err != nil {
			return err
		}
	}
	res.Clients = cfg.Conns
	res.ConnectSeconds = time.Since(t0).Seconds()
	logf("connected in %.1fs", res.ConnectSeconds)

	stats := func() ([]Report, error) {
		reps := make([]Report, len(readers))
		for i, l := range readers {
			if err := l.send(command{Cmd: "stat"}); err != nil {
				return nil, err
			}
			r, err := l.recv(ctx, "stat")
			if err != nil {
				return nil, err
			}
			reps[i] = r
		}
		return reps, nil
	}
	sum := func(reps []Report) (delivered, cpu int64) {
		for _, r := range reps {
			delivered += r.Delivered
			cpu += r.CPUNS
		}
		return delivered, cpu
	}
	before, err := stats()
	if err != nil {
		return err
	}
	var written int64
	for _, rate := range cfg.Rates {
		d0, c0 := sum(before)
		if err := writer.send(command{Cmd: "load", Rate: rate, Duration: cfg.Step}); err != nil {
			return err
		}
		ws, err := writer.recv(ctx, "step")
		if err != nil {
			return err
		}
		written += ws.Sent
		// Let the frames written arrive, so the step counts them all.
		// Every stat hands over the latencies recorded since the last.
		var after []Report
		var lat HistSnapshot
		deadline := time.Now().Add(3 * time.Second)
		for {
			if after, err = stats(); err != nil {
				return err
			}
			for _, r := range after {
				lat.Merge(r.Latency)
			}
			if d, _ := sum(after); d-d0 >= ws.Sent || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		d1, c1 := sum(after)
		s := Step{OfferedPerSec: rate, Sent: ws.Sent, Deliveries: d1 - d0, Backlog: ws.Sent - (d1 - d0)}
		s.Seconds = float64(ws.WindowEnd-ws.WindowStart) / 1e9
		s.DeliveriesPerSec = float64(s.Deliveries) / s.Seconds
		s.Latency = lat.Summary()
		s.ServerCPUSeconds = float64(ws.CPUNS) / 1e9
		s.LoadCPUSeconds = float64(c1-c0) / 1e9
		if s.Deliveries > 0 {
			s.CPUPer1k = s.ServerCPUSeconds / (float64(s.Deliveries) / 1000)
			s.LoadCPUPer1k = s.LoadCPUSeconds / (float64(s.Deliveries) / 1000)
		}
		logf("step %.0f deliveries/s: %.0f written/s, %.0f read/s, p99 %.1f ms, writer %.4f s/1k, reader %.4f s/1k",
			rate, float64(ws.Sent)/s.Seconds, s.DeliveriesPerSec, s.Latency.P99MS, s.CPUPer1k, s.LoadCPUPer1k)
		res.Steps = append(res.Steps, s)
		before = after
	}
	// Readers first: a reader whose connection the writer closed would
	// count it as failed.
	var read int64
	for _, l := range append(readers, writer) {
		if err := l.send(command{Cmd: "finish"}); err != nil {
			return err
		}
		r, err := l.recv(ctx, "done")
		if err != nil {
			return err
		}
		res.LoadRSS += r.RSSBytes
		res.Failed += r.Failed
		res.Errors = append(res.Errors, r.Errors...)
		read += r.Delivered
	}
	res.TotalSent, res.TotalAcked = written, written
	// A frame written and never read (within the drain) is lost: TCP on
	// loopback loses nothing, so this is a check of the tool itself.
	res.Lost = max(0, written-read)
	res.Unexpected = max(0, read-written)
	return nil
}

// floorWorker runs one floor process: the writer (Job.Role "writer") or a
// reader. It reads commands from sc and answers on enc like Worker.
func floorWorker(ctx context.Context, job Job, sc *bufio.Scanner, enc *json.Encoder) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reply := func(r Report) error {
		r.Worker = job.Worker
		return enc.Encode(r)
	}
	fail := func(err error) error {
		_ = reply(Report{Type: "error", Error: err.Error()})
		return err
	}
	var fw *floorWriter
	var fr *floorReader
	switch job.Role {
	case "writer":
		fw = &floorWriter{job: job}
		if err := fw.listen(); err != nil {
			return fail(err)
		}
		defer fw.close()
		if err := reply(Report{Type: "ready", Addr: fw.ln.Addr().String(), PID: syscall.Getpid()}); err != nil {
			return err
		}
	case "reader":
		fr = &floorReader{job: job}
		fr.lat.Store(new(Histogram))
		defer fr.close()
		if err := fr.connect(ctx); err != nil {
			return fail(err)
		}
		if err := reply(Report{Type: "ready", Clients: job.Conns}); err != nil {
			return err
		}
	default:
		return fail(fmt.Errorf("floor: unknown role %q", job.Role))
	}
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("bench worker: bad command: %w", err)
		}
		var r Report
		switch {
		case cmd.Cmd == "load" && fw != nil:
			r = fw.load(ctx, cmd.Rate, cmd.Duration)
		case cmd.Cmd == "stat" && fr != nil:
			r = Report{Type: "stat", Delivered: fr.delivered.Load(), CPUNS: cpuNS(),
				Latency: fr.lat.Swap(new(Histogram)).Snapshot()}
		case cmd.Cmd == "finish":
			r = Report{Type: "done", RSSBytes: selfRSS()}
			if fw != nil {
				r.Sent = fw.sent
				fw.close()
			} else {
				fr.close()
				r.Delivered = fr.delivered.Load()
				r.Failed = int(fr.failed.Load())
			}
			return reply(r)
		default:
			r = Report{Type: "error", Error: "floor: unknown command " + strconv.Quote(cmd.Cmd)}
		}
		if err := reply(r); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("bench worker: input closed before finish")
}

// floorWriter is the writing end: it accepts connections and writes
// frames to them.
type floorWriter struct {
	job  Job
	ln   net.Listener
	hs   *http.Server // ws mode
	wg   sync.WaitGroup
	sent int64

	mu  sync.Mutex
	tcp []net.Conn
	ws  []*websocket.Conn
	got chan struct{} // closed when every connection is in
}

func (fw *floorWriter) listen() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fw.ln = ln
	fw.got = make(chan struct{})
	if fw.job.Mode == FloorWS {
		fw.hs = &http.Server{Handler: http.HandlerFunc(fw.accept), ReadHeaderTimeout: 10 * time.Second}
		fw.wg.Add(1)
		go func() { // owner: fw; close shuts the server down and waits
			defer fw.wg.Done()
			_ = fw.hs.Serve(ln)
		}()
		return nil
	}
	fw.wg.Add(1)
	go func() { // owner: fw; close closes the listener and waits
		defer fw.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fw.add(c, nil)
		}
	}()
	return nil
}

// accept upgrades one WebSocket; the connection outlives the handler, as
// in Parley's server.
func (fw *floorWriter) accept(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	fw.add(nil, c)
}

func (fw *floorWriter) add(tc net.Conn, wc *websocket.Conn) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if tc != nil {
		fw.tcp = append(fw.tcp, tc)
	} else {
		fw.ws = append(fw.ws, wc)
	}
	if len(fw.tcp)+len(fw.ws) == fw.job.Conns {
		close(fw.got)
	}
}

// load writes frames at rate in total for d, spread over the connections
// in turn, from one goroutine per CPU, each owning a share of the
// connections. Open loop: a writer that falls behind writes as fast as it
// can, and the report shows the rate achieved.
func (fw *floorWriter) load(ctx context.Context, rate float64, d time.Duration) Report {
	select {
	case <-fw.got:
	case <-time.After(30 * time.Second):
		return Report{Type: "error", Error: "floor: not every connection arrived within 30 s"}
	case <-ctx.Done():
		return Report{Type: "error", Error: ctx.Err().Error()}
	}
	fw.mu.Lock()
	n := len(fw.tcp) + len(fw.ws)
	fw.mu.Unlock()
	pacers := max(1, min(runtime.GOMAXPROCS(0), n))
	c0 := cpuNS()
	start := time.Now()
	end := start.Add(d)
	var sent atomic.Int64
	var wg sync.WaitGroup
	for p := range pacers {
		wg.Add(1)
		go func() { // owner: load, which waits for it
			defer wg.Done()
			sent.Add(fw.pace(ctx, p, pacers, rate/float64(pacers), start, end))
		}()
	}
	wg.Wait()
	stop := time.Now()
	r := Report{Type: "step", Sent: sent.Load(), WindowStart: start.UnixNano(), WindowEnd: stop.UnixNano(), CPUNS: cpuNS() - c0}
	fw.sent += r.Sent
	return r
}

// pace writes pacer p's share: connections p, p+pacers, ... in turn.
func (fw *floorWriter) pace(ctx context.Context, p, pacers int, rate float64, start, end time.Time) int64 {
	fw.mu.Lock()
	tcp, ws := fw.tcp, fw.ws
	fw.mu.Unlock()
	n := len(tcp) + len(ws)
	buf := make([]byte, 0, fw.job.FrameBytes)
	interval := float64(time.Second) / rate
	next := p // the next connection, in steps of pacers
	var k int64
	for {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			return k
		}
		due := int64(float64(now.Sub(start)) / interval)
		for ; k < due && ctx.Err() == nil; k++ {
			buf = floorFrame(buf, fw.job.FrameBytes, time.Now().UnixNano())
			var err error
			if next < len(tcp) {
				_, err = tcp[next].Write(buf)
			} else {
				err = ws[next-len(tcp)].Write(ctx, websocket.MessageText, buf)
			}
			if err != nil {
				return k // the reader is gone; the parent sees frames missing
			}
			if next += pacers; next >= n {
				next = p
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func (fw *floorWriter) close() {
	if fw.hs != nil {
		_ = fw.hs.Close()
	}
	_ = fw.ln.Close()
	fw.mu.Lock()
	for _, c := range fw.tcp {
		_ = c.Close()
	}
	for _, c := range fw.ws {
		_ = c.CloseNow()
	}
	fw.tcp, fw.ws = nil, nil
	fw.mu.Unlock()
	fw.wg.Wait()
}

// floorReader is the reading end: one goroutine per connection, reading
// and counting frames and recording their latency.
type floorReader struct {
	job       Job
	delivered atomic.Int64
	failed    atomic.Int64
	lat       atomic.Pointer[Histogram]

	mu     sync.Mutex
	closed bool
	tcp    []net.Conn
	ws     []*wsConn
	wg     sync.WaitGroup // the read goroutines
}

// connect dials every connection, DialConcurrency at a time, over the
// source addresses 127.0.0.2... (by FirstUser + i, as clients are).
func (fr *floorReader) connect(ctx context.Context) error {
	n := max(fr.job.SourceAddrs, 1)
	var dialers []*net.Dialer
	for i := range n {
		dialers = append(dialers, &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}, Timeout: 10 * time.Second})
	}
	wsd := newDialer(n, 2)
	url := "ws://" + fr.job.Addr + "/"
	sem := newSemaphore(max(fr.job.DialConcurrency, 1))
	errc := make(chan error, fr.job.Conns)
	for i := range fr.job.Conns {
		if err := sem.Acquire(ctx); err != nil {
			return err
		}
		a := fr.job.FirstUser + i
		go func() { // owner: this loop, which collects every result below
			defer sem.Release()
			errc <- fr.dialOne(ctx, dialers[a%n], wsd, url, a)
		}()
	}
	var first error
	for range fr.job.Conns {
		if err := <-errc; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (fr *floorReader) dialOne(ctx context.Context, d *net.Dialer, wsd *dialer, url string, a int) error {
	var tc net.Conn
	var wc *wsConn
	var err error
	if fr.job.Mode == FloorWS {
		wc, err = wsd.dial(ctx, url, a)
	} else {
		tc, err = d.DialContext(ctx, "tcp", fr.job.Addr)
	}
	if err != nil {
		return err
	}
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if fr.closed {
		if tc != nil {
			tc.Close()
		} else {
			wc.closeNow()
		}
		return errors.New("closed")
	}
	if tc != nil {
		fr.tcp = append(fr.tcp, tc)
	} else {
		fr.ws = append(fr.ws, wc)
	}
	fr.wg.Add(1)
	go func() { // owner: fr; close closes the connection and waits
		defer fr.wg.Done()
		if tc != nil {
			fr.readTCP(tc)
		} else {
			fr.readWS(wc)
		}
	}()
	return nil
}

func (fr *floorReader) got(frame []byte) {
	if sent, ok := floorSent(frame); ok {
		fr.lat.Load().Record(time.Duration(time.Now().UnixNano() - sent))
	}
	fr.delivered.Add(1)
}

// readTCP reads fixed-size frames until the connection closes.
func (fr *floorReader) readTCP(c net.Conn) {
	br := bufio.NewReaderSize(c, 2048)
	frame := make([]byte, fr.job.FrameBytes)
	for {
		if _, err := io.ReadFull(br, frame); err != nil {
			fr.noteEnd(err)
			return
		}
		fr.got(frame)
	}
}

// readWS reads messages into a reused buffer until the connection closes.
func (fr *floorReader) readWS(c *wsConn) {
	buf := make([]byte, 0, fr.job.FrameBytes)
	for {
		b, err := c.readMessage(buf)
		if err != nil {
			fr.noteEnd(err)
			return
		}
		buf = b
		fr.got(b)
	}
}

// noteEnd counts a connection that ended before close as failed.
func (fr *floorReader) noteEnd(error) {
	fr.mu.Lock()
	defer fr.mu.Unlock()
	if !fr.closed {
		fr.failed.Add(1)
	}
}

func (fr *floorReader) close() {
	fr.mu.Lock()
	if !fr.closed {
		fr.closed = true
		for _, c := range fr.tcp {
			_ = c.Close()
		}
		for _, c := range fr.ws {
			_ = c.closeNow()
		}
	}
	fr.mu.Unlock()
	fr.wg.Wait()
}
