package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/protocol"
)

// Job is what one worker is asked to do. The parent sends it as the first
// JSON line on the worker's stdin; commands follow, one per line, and the
// worker answers each with one Report line on stdout.
type Job struct {
	Scenario string `json:"scenario"`
	Worker   int    `json:"worker"`
	RunID    string `json:"run_id"`
	WSURL    string `json:"ws_url"`
	Secret   []byte `json:"secret"`

	FirstUser  int `json:"first_user"`
	FirstRoom  int `json:"first_room"`
	Rooms      int `json:"rooms"`
	Members    int `json:"members"`
	Publishers int `json:"publishers"`
	// Idle connections with no room (idle scenario).
	Idle int `json:"idle"`

	TextBytes       int           `json:"text_bytes"`
	SourceAddrs     int           `json:"source_addrs"`
	DialConcurrency int           `json:"dial_concurrency"`
	BackoffBase     time.Duration `json:"backoff_base"`
	BackoffMax      time.Duration `json:"backoff_max"`
	// Reconnect makes clients reconnect and resume after a drop (storm);
	// otherwise a lost connection is reported as a failure.
	Reconnect bool `json:"reconnect"`
	// Receipts makes clients report what they received (the delivered
	// op), coalesced to at most one report per second each, as the SDK.
	Receipts bool `json:"receipts,omitempty"`
	// CPUProfile, when set, is a file the worker writes its CPU profile
	// to, from its start to its end (worker processes only: a worker in
	// the parent is covered by the parent's profile).
	CPUProfile string `json:"cpu_profile,omitempty"`

	// floor: the process's role (writer or reader), its connections, the
	// mode (tcp or ws), the frame size and the writer's address.
	Role       string `json:"role,omitempty"`
	Conns      int    `json:"conns,omitempty"`
	Mode       string `json:"mode,omitempty"`
	FrameBytes int    `json:"frame_bytes,omitempty"`
	Addr       string `json:"addr,omitempty"`
}

// command is a parent-to-worker instruction.
type command struct {
	Cmd       string        `json:"cmd"` // load, closed, drop, await, resume, finish
	Rate      float64       `json:"rate,omitempty"`
	Duration  time.Duration `json:"duration,omitempty"`
	Window    int           `json:"window,omitempty"`
	Since     int64         `json:"since,omitempty"`
	ReadyAt   int64         `json:"ready_at,omitempty"` // await: resume times are measured from it
	Timeout   time.Duration `json:"timeout,omitempty"`
	Missed    int           `json:"missed,omitempty"`
	Repeat    int           `json:"repeat,omitempty"`
	KeepGoing bool          `json:"keep_going,omitempty"`
}

// Report is a worker-to-parent answer. Which fields are set depends on
// Type: ready, step, dropped, resumed, resume, done, error.
type Report struct {
	Type   string `json:"type"`
	Worker int    `json:"worker"`
	Error  string `json:"error,omitempty"`

	Clients   int   `json:"clients,omitempty"`
	ConnectNS int64 `json:"connect_ns,omitempty"`

	// floor: the writer's address and pid (ready), the process's CPU time
	// (stat: since it started; step: during the step)
	Addr  string `json:"addr,omitempty"`
	PID   int    `json:"pid,omitempty"`
	CPUNS int64  `json:"cpu_ns,omitempty"`

	// step
	WindowStart int64        `json:"window_start,omitempty"`
	WindowEnd   int64        `json:"window_end,omitempty"`
	Sent        int64        `json:"sent,omitempty"`
	Acked       int64        `json:"acked,omitempty"`
	Delivered   int64        `json:"delivered,omitempty"` // within the window
	Expected    int64        `json:"expected,omitempty"`  // deliveries due for acked sends in the window
	Backlog     int64        `json:"backlog,omitempty"`   // deliveries still due at the window's end
	Latency     HistSnapshot `json:"latency"`
	AckLatency  HistSnapshot `json:"ack_latency"`
	SendErrors  int64        `json:"send_errors,omitempty"`

	// resumed (storm)
	Connected      int          `json:"connected,omitempty"`
	Resumed        int          `json:"resumed,omitempty"`
	LastResumeNS   int64        `json:"last_resume_ns,omitempty"`
	ResumeTimes    HistSnapshot `json:"resume_times"`
	Replayed       int64        `json:"replayed,omitempty"`
	Resyncs        int64        `json:"resyncs,omitempty"`
	Reconnects     int64        `json:"reconnects,omitempty"`
	Resent         int64        `json:"resent,omitempty"`
	Dials          int64        `json:"dials,omitempty"`
	Refused        int64        `json:"refused,omitempty"`
	SharedRefusals int64        `json:"shared_refusals,omitempty"`

	// resume
	ResumeLatency HistSnapshot `json:"resume_latency"`
	ResumeEvents  int64        `json:"resume_events,omitempty"`

	// done
	TotalSent   int64    `json:"total_sent,omitempty"`
	TotalAcked  int64    `json:"total_acked,omitempty"`
	Unacked     int64    `json:"unacked,omitempty"`
	Lost        int64    `json:"lost"`
	Duplicated  int64    `json:"duplicated"`
	Unexpected  int64    `json:"unexpected"`
	PosRepeats  int64    `json:"pos_repeats"`
	ProtoErrors int64    `json:"proto_errors"`
	Receipts    int64    `json:"receipts,omitempty"`
	Failed      int      `json:"failed"`
	Errors      []string `json:"errors,omitempty"`
	RSSBytes    int64    `json:"rss_bytes,omitempty"`
}

// worker runs a share of the simulated users in one process.
type worker struct {
	job     Job
	marker  []byte
	dialer  *dialer
	dialSem *semaphore
	// refusals shares refused dials between the clients (see refusals).
	refusals refusals
	clients  []*client
	rooms    []*room

	latency    atomic.Pointer[Histogram]
	ackLatency atomic.Pointer[Histogram]
	closedLoop atomic.Bool

	sent, acked, delivered, sendErrors atomic.Int64
	protoErrors, posRepeats, resent    atomic.Int64
	receipts                           atomic.Int64 // delivered ops sent (Job.Receipts)
	resumes                            atomic.Int64

	errMu  sync.Mutex
	errors []string

	wg sync.WaitGroup // client run goroutines; Worker waits for them
}

func (w *worker) noteError(format string, args ...any) {
	w.errMu.Lock()
	defer w.errMu.Unlock()
	if len(w.errors) < 10 {
		w.errors = append(w.errors, fmt.Sprintf(format, args...))
	}
}

// semaphore bounds concurrent dials so a connect burst does not overflow
// the server's listen backlog.
type semaphore struct{ ch chan struct{} }

func newSemaphore(n int) *semaphore { return &semaphore{ch: make(chan struct{}, n)} }
func (s *semaphore) Acquire(ctx context.Context) error {
	select {
	case s.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (s *semaphore) Release() { <-s.ch }

// Worker runs one worker: it reads a Job and then commands from in, and
// writes Reports to out, until the finish command or ctx ends. It blocks;
// every goroutine it starts is stopped and waited for before it returns.
func Worker(ctx context.Context, in io.Reader, out io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	enc := json.NewEncoder(out)
	if !sc.Scan() {
		return fmt.Errorf("bench worker: no job on input: %v", sc.Err())
	}
	var job Job
	if err := json.Unmarshal(sc.Bytes(), &job); err != nil {
		return fmt.Errorf("bench worker: bad job: %w", err)
	}
	if job.CPUProfile != "" {
		f, err := os.Create(job.CPUProfile)
		if err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("bench worker: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if job.Scenario == "floor" {
		return floorWorker(ctx, job, sc, enc)
	}
	ctx, cancel := context.WithCancel(ctx)
	w := newWorker(job)
	defer func() {
		cancel()
		w.wg.Wait()
	}()
	rep := Report{Type: "ready", Worker: job.Worker}
	start := time.Now()
	if err := w.setup(ctx); err != nil {
		rep = Report{Type: "error", Worker: job.Worker, Error: err.Error()}
		_ = enc.Encode(rep)
		return err
	}
	rep.ConnectNS = int64(time.Since(start))
	rep.Clients = len(w.clients)
	if err := enc.Encode(rep); err != nil {
		return err
	}
	// Commands run concurrently (a storm's load goes on while the clients
	// are dropped and awaited); each answers with one line. cmds is the
	// owner of their goroutines: finish waits for them before it answers.
	var encMu sync.Mutex
	reply := func(r Report) error {
		r.Worker = job.Worker
		encMu.Lock()
		defer encMu.Unlock()
		return enc.Encode(r)
	}
	var cmds sync.WaitGroup
	defer cmds.Wait()
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			return fmt.Errorf("bench worker: bad command: %w", err)
		}
		if cmd.Cmd == "finish" {
			cmds.Wait()
			return reply(w.finish(ctx, cmd, cancel))
		}
		cmds.Add(1)
		go func() {
			defer cmds.Done()
			var r Report
			switch cmd.Cmd {
			case "load":
				r = w.load(ctx, cmd)
			case "closed":
				r = w.closed(ctx, cmd)
			case "drop":
				r = w.drop()
			case "await":
				r = w.await(ctx, cmd)
			case "resume":
				r = w.resume(ctx, cmd)
			default:
				r = Report{Type: "error", Error: "unknown command " + strconv.Quote(cmd.Cmd)}
			}
			_ = reply(r)
		}()
	}
	if err := sc.Err(); err != nil {
		return err
	}
	return errors.New("bench worker: input closed before finish")
}

func newWorker(job Job) *worker {
	w := &worker{job: job}
	w.marker = []byte(`"text":"pb|` + job.RunID + `|`)
	w.dialer = newDialer(max(job.SourceAddrs, 1), 2)
	w.dialSem = newSemaphore(max(job.DialConcurrency, 1))
	w.latency.Store(new(Histogram))
	w.ackLatency.Store(new(Histogram))
	u := job.FirstUser
	newClient := func() *client {
		c := &client{
			w:       w,
			idx:     u,
			userID:  fmt.Sprintf("bench-%s-%d", job.RunID, u),
			addr:    u,
			replies: make(chan []byte, 4),
			pending: make(map[uint32]pendingSend),
		}
		u++
		w.clients = append(w.clients, c)
		return c
	}
	for r := range job.Rooms {
		rm := &room{idx: job.FirstRoom + r}
		for m := range job.Members {
			c := newClient()
			c.room, c.member = rm, m
			c.recv = make([]bitset, job.Members)
			rm.members = append(rm.members, c)
		}
		w.rooms = append(w.rooms, rm)
	}
	for range job.Idle {
		newClient()
	}
	return w
}

// setup connects every client and creates the rooms.
func (w *worker) setup(ctx context.Context) error {
	for _, c := range w.clients {
		// Names are unique per user (the store refuses a name held by
		// another id), and a PostgreSQL store outlives a run: the name
		// carries the run id like the user id does.
		tok, _, err := auth.Mint(w.job.Secret, c.userID, fmt.Sprintf("b%s %d", w.job.RunID, c.idx), 24*time.Hour)
		if err != nil {
			return err
		}
		c.token = tok
	}
	w.wg.Add(1)
	go func() { // owner: the worker, which waits on w.wg
		defer w.wg.Done()
		w.heartbeat(ctx)
	}()
	readyErr := make(chan error, len(w.clients))
	for _, c := range w.clients {
		var once sync.Once
		ready := func(err error) { once.Do(func() { readyErr <- err }) }
		w.wg.Add(1)
		go func() { // owner: the worker, which waits on w.wg
			defer w.wg.Done()
			c.run(ctx, !w.job.Reconnect, ready)
			ready(errors.New("stopped before connecting"))
		}()
	}
	for range w.clients {
		select {
		case err := <-readyErr:
			if err != nil {
				return fmt.Errorf("connect: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	// Create the rooms, a bounded number at a time.
	sem := newSemaphore(64)
	errc := make(chan error, len(w.rooms))
	for _, rm := range w.rooms {
		if err := sem.Acquire(ctx); err != nil {
			return err
		}
		go func() { // owner: this loop, which collects every result below
			defer sem.Release()
			errc <- w.createRoom(ctx, rm)
		}()
	}
	for range w.rooms {
		if err := <-errc; err != nil {
			return err
		}
	}
	return nil
}

func (w *worker) createRoom(ctx context.Context, rm *room) error {
	owner := rm.members[0]
	var ids []string
	for _, m := range rm.members[1:] {
		ids = append(ids, m.userID)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	f, err := owner.request(ctx, protocol.OpCreateGroup, "g", protocol.CreateGroup{
		Title: fmt.Sprintf("bench %s room %d", w.job.RunID, rm.idx), MemberIDs: ids,
	})
	if err != nil {
		return fmt.Errorf("room %d: %w", rm.idx, err)
	}
	var conv struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(f.Data, &conv); err != nil || conv.ID == "" {
		return fmt.Errorf("room %d: bad create_group reply: %s", rm.idx, f.Data)
	}
	rm.id = conv.ID
	return nil
}

func (w *worker) publishers() []*client {
	var pubs []*client
	// Interleave rooms so consecutive sends hit different rooms.
	for m := range min(max(w.job.Publishers, 1), w.job.Members) {
		for _, rm := range w.rooms {
			pubs = append(pubs, rm.members[m])
		}
	}
	return pubs
}

func (w *worker) expectedDeliveries() int64 {
	var n int64
	for _, rm := range w.rooms {
		var a int64
		for _, m := range rm.members {
			a += m.ackedN.Load()
		}
		n += a * int64(len(rm.members))
	}
	return n
}

// load sends at a fixed total rate (open loop: each message carries its
// scheduled time, so a stalled sender shows up as latency instead of
// hiding it) for the duration, then waits briefly for the backlog.
func (w *worker) load(ctx context.Context, cmd command) Report {
	pubs := w.publishers()
	w.latency.Store(new(Histogram))
	w.ackLatency.Store(new(Histogram))
	s0, a0, d0, e0 := w.sent.Load(), w.acked.Load(), w.delivered.Load(), w.expectedDeliveries()
	const pacers = 4
	start := time.Now()
	end := start.Add(cmd.Duration)
	var wg sync.WaitGroup
	if len(pubs) > 0 && cmd.Rate > 0 {
		for p := range min(pacers, len(pubs)) {
			var mine []*client
			for i := p; i < len(pubs); i += pacers {
				mine = append(mine, pubs[i])
			}
			rate := cmd.Rate * float64(len(mine)) / float64(len(pubs))
			wg.Add(1)
			go func() { // owner: load, which waits for it
				defer wg.Done()
				pace(ctx, mine, rate, start, end)
			}()
		}
	}
	wg.Wait()
	r := Report{Type: "step", WindowStart: start.UnixNano(), WindowEnd: time.Now().UnixNano()}
	r.Delivered = w.delivered.Load() - d0
	r.Backlog = max(0, w.expectedDeliveries()-w.delivered.Load())
	// Let the step's messages arrive so their latency counts in this step.
	w.waitDrain(ctx, 3*time.Second)
	r.Sent = w.sent.Load() - s0
	r.Acked = w.acked.Load() - a0
	r.Expected = w.expectedDeliveries() - e0
	r.Latency = w.latency.Load().Snapshot()
	r.AckLatency = w.ackLatency.Load().Snapshot()
	r.SendErrors = w.sendErrors.Load()
	return r
}

// dueBy is how many messages paced at interval (ns) from a start are due
// elapsed after it: message k is scheduled at start + k*interval and due
// from then, so one is due at the start itself. (Counting only whole
// intervals passed sent each message one interval after its scheduled
// time, which the open-loop latency then counted: 2 ms per delivery at
// 2000 msg/s over 4 pacers, 40 ms at 100 msg/s.)
func dueBy(elapsed time.Duration, interval float64) int {
	return int(float64(elapsed)/interval) + 1
}

func pace(ctx context.Context, pubs []*client, rate float64, start, end time.Time) {
	var buf []byte
	interval := float64(time.Second) / rate
	k := 0
	for {
		now := time.Now()
		if now.After(end) || ctx.Err() != nil {
			return
		}
		due := dueBy(now.Sub(start), interval)
		for ; k < due; k++ {
			sched := start.Add(time.Duration(float64(k) * interval)).UnixNano()
			buf = pubs[k%len(pubs)].send(ctx, buf, sched)
		}
		time.Sleep(time.Millisecond)
	}
}

// closed runs the write scenario: every publisher keeps Window sends in
// flight, sending the next one when one is acknowledged.
func (w *worker) closed(ctx context.Context, cmd command) Report {
	pubs := w.publishers()
	w.latency.Store(new(Histogram))
	w.ackLatency.Store(new(Histogram))
	a0, d0, s0 := w.acked.Load(), w.delivered.Load(), w.sent.Load()
	start := time.Now()
	w.closedLoop.Store(true)
	var buf []byte
	for range max(cmd.Window, 1) {
		for _, c := range pubs {
			buf = c.send(ctx, buf, time.Now().UnixNano())
		}
	}
	_ = sleep(ctx, cmd.Duration) // cancelled: report the window so far
	w.closedLoop.Store(false)
	r := Report{Type: "step", WindowStart: start.UnixNano(), WindowEnd: time.Now().UnixNano()}
	r.Acked = w.acked.Load() - a0
	r.Delivered = w.delivered.Load() - d0
	r.AckLatency = w.ackLatency.Load().Snapshot()
	w.waitDrain(ctx, 5*time.Second)
	r.Sent = w.sent.Load() - s0
	r.Latency = w.latency.Load().Snapshot()
	r.SendErrors = w.sendErrors.Load()
	return r
}

// waitDrain waits until every acknowledged send has been delivered to
// every member and no send is pending, or the timeout passes.
func (w *worker) waitDrain(ctx context.Context, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		if w.delivered.Load() >= w.expectedDeliveries() && w.pendingSends() == 0 {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *worker) pendingSends() int {
	n := 0
	for _, rm := range w.rooms {
		for _, c := range rm.members {
			c.mu.Lock()
			n += len(c.pending)
			c.mu.Unlock()
		}
	}
	return n
}

// drop closes every connection at once, without a close handshake, as a
// network failure would; the clients reconnect and resume.
func (w *worker) drop() Report {
	for _, c := range w.clients {
		if conn := c.conn.Load(); conn != nil {
			_ = conn.closeNow()
		}
	}
	return Report{Type: "dropped"}
}

// await waits until every client has resumed (or, for a fresh connection,
// been welcomed) after cmd.Since, then reports how long that took.
func (w *worker) await(ctx context.Context, cmd command) Report {
	deadline := time.Now().Add(cmd.Timeout)
	r := Report{Type: "resumed", Clients: len(w.clients)}
	for {
		connected, resumed := 0, 0
		var last int64
		for _, c := range w.clients {
			if c.conn.Load() != nil {
				connected++
			}
			if t := c.resumedAt.Load(); t > cmd.Since {
				resumed++
				last = max(last, t)
			}
		}
		r.Connected, r.Resumed, r.LastResumeNS = connected, resumed, last
		if resumed == len(w.clients) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A client may resume between the outage (Since) and the moment the
	// parent saw the server ready (ReadyAt): it counts, at time zero.
	from := max(cmd.ReadyAt, cmd.Since)
	var h Histogram
	for _, c := range w.clients {
		if t := c.resumedAt.Load(); t > cmd.Since {
			h.Record(time.Duration(max(t-from, 0)))
		}
		r.Replayed += c.replayed.Load()
		r.Resyncs += c.resyncs.Load()
		r.Reconnects += c.connects.Load() - 1
	}
	r.ResumeTimes = h.Snapshot()
	r.Resent = w.resent.Load()
	r.Dials = w.refusals.dials.Load()
	r.Refused = w.refusals.refused.Load()
	r.SharedRefusals = w.refusals.shared.Load()
	return r
}

// resume measures one client catching up on missed events: the first
// member of each room disconnects, another member sends cmd.Missed
// messages, and the first reconnects with resume_from; the time from hello
// to the resumed frame is recorded. Repeated cmd.Repeat times per room.
func (w *worker) resume(ctx context.Context, cmd command) Report {
	r := Report{Type: "resume"}
	var h Histogram
	for _, rm := range w.rooms {
		if len(rm.members) < 2 {
			r.Error = "resume needs rooms of at least 2 members"
			return r
		}
		reader, writer := rm.members[0], rm.members[1]
		for range max(cmd.Repeat, 1) {
			d, n, err := w.resumeOnce(ctx, reader, writer, cmd.Missed)
			if err != nil {
				r.Error = err.Error()
				return r
			}
			h.Record(d)
			r.ResumeEvents += n
		}
	}
	r.ResumeLatency = h.Snapshot()
	return r
}

func (w *worker) resumeOnce(ctx context.Context, reader, writer *client, missed int) (time.Duration, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// A separate connection of the reader's user, so the reader's regular
	// client stays as it is: it receives everything live, this one misses it.
	conn, err := w.dialer.dial(ctx, w.job.WSURL, reader.addr)
	if err != nil {
		return 0, 0, err
	}
	probe := &client{w: w, idx: reader.idx, token: reader.token, room: reader.room, recv: make([]bitset, len(reader.recv))}
	head, err := probe.hello(ctx, conn, nil)
	conn.closeNow()
	if err != nil {
		return 0, 0, err
	}
	var buf []byte
	for range missed {
		buf = writer.send(ctx, buf, time.Now().UnixNano())
	}
	if !w.waitDrain(ctx, 30*time.Second) {
		return 0, 0, errors.New("resume: the missed messages were not all acknowledged and delivered")
	}
	conn, err = w.dialer.dial(ctx, w.job.WSURL, reader.addr)
	if err != nil {
		return 0, 0, err
	}
	defer conn.closeNow()
	t0 := time.Now()
	if _, err := probe.hello(ctx, conn, head); err != nil {
		return 0, 0, err
	}
	for {
		b, err := probe.readFrame(conn)
		if err != nil {
			return 0, 0, err
		}
		if len(b) > 20 && string(b[:len(`{"type":"resumed"`)]) == `{"type":"resumed"` {
			break
		}
		if len(b) > 20 && string(b[:len(`{"type":"resync"`)]) == `{"type":"resync"` {
			return 0, 0, fmt.Errorf("resume: server answered resync after %d missed events", missed)
		}
		if bytes.HasPrefix(b, prefixEvent) {
			probe.onEvent(b)
		}
	}
	d := time.Since(t0)
	if got := probe.uniq.Load(); got != int64(missed) {
		return 0, 0, fmt.Errorf("resume: replayed %d of %d missed messages (%d duplicated)", got, missed, probe.dups.Load())
	}
	// Those deliveries were counted into the worker's totals by the probe;
	// take them out again so the loss accounting stays per member.
	w.delivered.Add(-probe.uniq.Load())
	return d, probe.uniq.Load(), nil
}

// hello says hello (protocol 2) on conn, resuming from cursor when it is
// not nil, and waits for the welcome; it returns the welcome's cursor (the
// heads).
func (c *client) hello(ctx context.Context, conn *wsConn, cursor protocol.ShardCursor) (protocol.ShardCursor, error) {
	hb, _ := json.Marshal(protocol.Hello{Token: c.token, Protocol: protocol.Version2, Cursor: cursor})
	req, _ := json.Marshal(protocol.Request{Op: protocol.OpHello, ID: "hello", Data: hb})
	if err := conn.write(req); err != nil {
		return nil, err
	}
	for {
		b, err := c.readFrame(conn)
		if err != nil {
			return nil, err
		}
		var f protocol.Frame
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, err
		}
		switch f.Type {
		case protocol.TypeError:
			return nil, fmt.Errorf("hello refused: %s: %s", f.Error.Code, f.Error.Message)
		case protocol.TypeWelcome:
			var wl protocol.Welcome
			err := json.Unmarshal(f.Data, &wl)
			if err == nil && wl.Cursor == nil {
				wl.Cursor = protocol.ShardCursor{} // a server of protocol 1 would say head only
			}
			return wl.Cursor, err
		}
	}
}

// finish stops sending, waits for the backlog to drain, closes every
// connection and checks every delivery against every acknowledged send.
func (w *worker) finish(ctx context.Context, cmd command, stop context.CancelFunc) Report {
	w.closedLoop.Store(false)
	w.waitDrain(ctx, cmd.Timeout)
	stop()
	w.wg.Wait()
	r := Report{Type: "done"}
	for _, rm := range w.rooms {
		acked := make([]bitset, len(rm.members))
		for s, m := range rm.members {
			m.mu.Lock()
			acked[s] = append(bitset(nil), m.acked...)
			r.Unacked += int64(len(m.pending))
			m.mu.Unlock()
		}
		for _, m := range rm.members {
			for s := range rm.members {
				r.Lost += acked[s].andNotCount(m.recv[s])
				r.Unexpected += m.recv[s].andNotCount(acked[s])
			}
		}
	}
	for _, c := range w.clients {
		r.Duplicated += c.dups.Load()
		r.Unexpected += c.unexpected.Load()
		if c.failed.Load() != nil {
			r.Failed++
			w.noteError("user %d: %s", c.idx, *c.failed.Load())
		}
	}
	r.TotalSent = w.sent.Load()
	r.TotalAcked = w.acked.Load()
	r.PosRepeats = w.posRepeats.Load()
	r.ProtoErrors = w.protoErrors.Load()
	r.Receipts = w.receipts.Load()
	r.SendErrors = w.sendErrors.Load()
	r.Resent = w.resent.Load()
	r.RSSBytes = selfRSS()
	w.errMu.Lock()
	r.Errors = append(r.Errors, w.errors...)
	w.errMu.Unlock()
	return r
}

// heartbeat pings every connected client every protocol.HeartbeatInterval,
// counted from its hello, as the SDK does (a ticker started with the
// connection), or the server closes the connection with 4002. A client
// that just (re)connected is not pinged before an interval has passed: in
// a reconnect storm, pinging clients on a fixed schedule regardless of
// their connection's age added a ping for most of them while the server
// was busiest. Clients are checked every tick, so a ping is at most a tick
// late.
func (w *worker) heartbeat(ctx context.Context) {
	const tickEvery = 100 * time.Millisecond
	tick := time.NewTicker(tickEvery)
	defer tick.Stop()
	ping := []byte(`{"op":"ping","id":"h"}`)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now().UnixNano()
		for _, c := range w.clients {
			conn := c.conn.Load()
			if conn == nil {
				continue
			}
			if w.job.Receipts {
				c.reportDelivered(conn, now)
			}
			if c.pingAt.Load() > now {
				continue
			}
			c.pingAt.Store(now + int64(protocol.HeartbeatInterval))
			_ = conn.write(ping)
		}
	}
}
