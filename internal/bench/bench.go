// Package bench is Parley's load tool: `parley bench SCENARIO` drives a
// server with many simulated users speaking protocol v1 directly (no SDK,
// reused buffers, frames scanned without decoding), checks that every
// acknowledged message reaches every member exactly once, and reports
// throughput, latency and the server's CPU and memory.
//
// A run has one parent and one or more workers. The parent starts (or is
// given) the server, splits the users between workers, steps them through
// the scenario and adds up their reports. Each room lives whole in one
// worker, so a worker checks its deliveries against its own sends. With
// Procs > 1 the workers are child processes (the binary re-executed with
// PARLEY_BENCH_WORKER=1), because one process may hold at most as many
// connections as it may open files; with Procs = 1 the worker runs in the
// parent, on pipes. Either way parent and worker speak JSON lines.
//
// Latency is measured on the load tool's clock: each message's text holds
// its scheduled send time, and the receiving member subtracts it from the
// time the frame arrived. Sends are open loop (scheduled, not waiting for
// answers), so a stalled server shows as latency, not as a lower rate.
package bench

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parleychat/parley/protocol"
)

// Scenarios the tool knows.
var Scenarios = []string{"fanout", "latency", "idle", "storm", "write", "resume", "floor"}

// Config is one run. Zero fields take the defaults of the scenario (see
// Defaults).
type Config struct {
	Scenario string
	// Server to drive. Secret signs the load users' tokens; it must be the
	// server's.
	Server Server
	Secret []byte

	Procs      int // worker processes (default 1: in this process)
	Rooms      int
	Members    int
	Publishers int // members of each room that send (default: all)
	Conns      int // idle, storm and floor: connections in total

	Rates    []float64     // fanout: total messages/s, floor: deliveries/s, one step each
	Step     time.Duration // fanout, floor: length of each step
	Rate     float64       // latency and storm: messages/s
	Duration time.Duration // latency, write: length; storm: load length

	Settle  time.Duration // idle: wait before reading RSS
	Restart string        // storm: kill, graceful or drop
	Window  int           // write: sends in flight per publisher
	Missed  int           // resume: events missed
	Repeat  int           // resume: repeats per room

	Mode string // floor: tcp (raw TCP) or ws (coder/websocket framing)
	// Receipts: every client reports what it received with the delivered
	// op, at most once a second, as the SDK does (A/B the receipts' cost).
	Receipts   bool
	FrameBytes int // floor: bytes per frame

	TextBytes       int
	SourceAddrs     int
	DialConcurrency int
	BackoffBase     time.Duration
	BackoffMax      time.Duration
	DrainTimeout    time.Duration

	// WorkerCommand runs one worker process (Procs > 1); default: this
	// executable with args "bench --worker". The env var
	// PARLEY_BENCH_WORKER=1 is always set.
	WorkerCommand []string
	// WorkerMaxProcs is GOMAXPROCS of each worker process (Procs > 1).
	// Default (0): the machine's CPUs divided between the workers (at
	// least 1), unless GOMAXPROCS is set in the environment; -1: Go's
	// default. Workers are many goroutines blocked on sockets: with a P
	// each of the CPUs they share with the server, their schedulers wake
	// idle Ps and spin for work (futex, netpoll) at every wake-up. With
	// GOMAXPROCS=1 in each of two workers on 2 cores, the storm's load-tool
	// CPU per reconnect fell by a fifth to a quarter.
	WorkerMaxProcs int
	// WorkerCPUProfile, when set, makes each worker process (Procs > 1)
	// write its own CPU profile to WorkerCPUProfile + ".worker" + N.
	WorkerCPUProfile string
	// Label describes the server (store, mode) in the report.
	Label string
	// Log gets progress lines (nil: none).
	Log io.Writer
}

// scenarioDefaults are each scenario's own defaults; commonDefaults
// apply to every scenario after them.
var (
	scenarioDefaults = map[string]Config{
		"fanout":  {Rooms: 1000, Members: 10, Rates: []float64{2000, 5000, 10000, 20000}, Step: 5 * time.Second},
		"latency": {Members: 10, Rooms: 100, Rate: 1000, Duration: 10 * time.Second},
		"idle":    {Conns: 15000, Settle: 5 * time.Second},
		"storm":   {Conns: 15000, Members: 10, Rate: 1000, Duration: 10 * time.Second, Restart: "kill"},
		"write":   {Rooms: 100, Members: 1, Window: 8, Duration: 10 * time.Second},
		"floor":   {Conns: 10000, Rates: []float64{20000, 50000, 100000, 200000}, Step: 5 * time.Second, FrameBytes: 200, Mode: FloorTCP},
		"resume":  {Rooms: 1, Members: 2, Missed: 1000, Repeat: 10},
	}
	commonDefaults = Config{
		Procs: 1, TextBytes: 64, SourceAddrs: 32, DialConcurrency: 512,
		BackoffBase: 50 * time.Millisecond, BackoffMax: time.Second, DrainTimeout: 15 * time.Second,
	}
)

// Defaults fills the zero fields of c with the scenario's defaults.
func (c Config) Defaults() Config {
	c.fill(scenarioDefaults[c.Scenario])
	if c.Scenario == "floor" {
		c.FrameBytes = max(c.FrameBytes, floorMinFrame)
	}
	if c.Scenario == "storm" && c.Rooms == 0 {
		c.Rooms = max(c.Conns/c.Members, 1)
	}
	def(&c.Publishers, c.Members)
	c.fill(commonDefaults)
	return c
}

// fill sets the load-shape fields of c that are zero to those of d.
func (c *Config) fill(d Config) {
	def(&c.Procs, d.Procs)
	def(&c.Rooms, d.Rooms)
	def(&c.Members, d.Members)
	def(&c.Conns, d.Conns)
	if len(c.Rates) == 0 {
		c.Rates = slices.Clone(d.Rates)
	}
	def(&c.Step, d.Step)
	def(&c.Rate, d.Rate)
	def(&c.Duration, d.Duration)
	def(&c.Settle, d.Settle)
	def(&c.Restart, d.Restart)
	def(&c.Window, d.Window)
	def(&c.Missed, d.Missed)
	def(&c.Repeat, d.Repeat)
	def(&c.Mode, d.Mode)
	def(&c.FrameBytes, d.FrameBytes)
	def(&c.TextBytes, d.TextBytes)
	def(&c.SourceAddrs, d.SourceAddrs)
	def(&c.DialConcurrency, d.DialConcurrency)
	def(&c.BackoffBase, d.BackoffBase)
	def(&c.BackoffMax, d.BackoffMax)
	def(&c.DrainTimeout, d.DrainTimeout)
}

// def sets *p to v when *p is the zero value.
func def[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Result is what a run reports.
type Result struct {
	Scenario string    `json:"scenario"`
	Machine  string    `json:"machine"`
	Server   string    `json:"server"`
	At       time.Time `json:"at"`
	Procs    int       `json:"procs"`
	Clients  int       `json:"clients"`
	Rooms    int       `json:"rooms,omitempty"`
	Members  int       `json:"members,omitempty"`

	ConnectSeconds float64 `json:"connect_seconds"`

	Steps []Step `json:"steps,omitempty"`

	// idle
	ServerRSSBeforeBytes int64   `json:"server_rss_before_bytes,omitempty"`
	ServerRSSAfterBytes  int64   `json:"server_rss_after_bytes,omitempty"`
	RSSPerConnBytes      float64 `json:"rss_per_conn_bytes,omitempty"`

	Storm  *Storm   `json:"storm,omitempty"`
	Resume *Summary `json:"resume,omitempty"`

	TotalSent   int64 `json:"total_sent"`
	TotalAcked  int64 `json:"total_acked"`
	Unacked     int64 `json:"unacked"`
	Lost        int64 `json:"lost"`
	Duplicated  int64 `json:"duplicated"`
	Unexpected  int64 `json:"unexpected"`
	SendErrors  int64 `json:"send_errors"`
	ProtoErrors int64 `json:"proto_errors"`
	// Receipts is how many delivered ops the clients sent (--receipts).
	Receipts int64    `json:"receipts,omitempty"`
	Failed   int      `json:"failed_clients"`
	Errors   []string `json:"errors,omitempty"`
	LoadRSS  int64    `json:"load_tool_rss_bytes"`
}

// Step is one load level.
type Step struct {
	OfferedPerSec    float64 `json:"offered_msgs_per_s,omitempty"`
	Seconds          float64 `json:"seconds"`
	Sent             int64   `json:"sent"`
	Acked            int64   `json:"acked"`
	AcksPerSec       float64 `json:"acks_per_s"`
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	Backlog          int64   `json:"backlog_at_end"`
	Latency          Summary `json:"latency"`
	AckLatency       Summary `json:"ack_latency"`
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	CPUPer1k         float64 `json:"server_cpu_s_per_1k_deliveries,omitempty"`
	// floor: the readers' CPU (the writer's is the server's above);
	// fanout, latency, write: the load tool's processes' CPU during the
	// step (its drain included), per 1k deliveries received
	LoadCPUSeconds float64 `json:"load_cpu_s,omitempty"`
	LoadCPUPer1k   float64 `json:"load_cpu_s_per_1k_deliveries,omitempty"`
	ServerRSSBytes int64   `json:"server_rss_bytes,omitempty"`
}

// Storm is the storm scenario's outcome.
type Storm struct {
	Mode            string  `json:"mode"`
	DownSeconds     float64 `json:"down_to_ready_s"`
	AllResumedAfter float64 `json:"all_resumed_after_ready_s"`
	Resumed         int     `json:"resumed"`
	Of              int     `json:"of"`
	ResumeP50       float64 `json:"resume_p50_s"`
	ResumeP99       float64 `json:"resume_p99_s"`
	Replayed        int64   `json:"replayed_events"`
	Resyncs         int64   `json:"resyncs"`
	Reconnects      int64   `json:"reconnect_attempts"`
	Resent          int64   `json:"resent_sends"`
	// Dials made since the start (the first connects included), those the
	// server refused, and retries answered by another client's refused
	// dial instead of a dial of their own (see refusals).
	Dials          int64 `json:"dials"`
	Refused        int64 `json:"refused_dials"`
	SharedRefusals int64 `json:"shared_refusals"`
	// CPU from the outage to the last resume (from /proc; 0 when not
	// known). The server's is the restarted process's since it started
	// (warm-up included; in drop mode, since the drop); the load tool's is
	// its workers' (see workersCPU). Both
	// include the message load and heartbeats running meanwhile.
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	ServerCPUPerConn float64 `json:"server_cpu_us_per_client,omitempty"`
	LoadCPUSeconds   float64 `json:"load_cpu_s,omitempty"`
	LoadCPUPerConn   float64 `json:"load_cpu_us_per_client,omitempty"`
}

// link is the parent's end of one worker.
type link struct {
	in      io.WriteCloser
	out     *bufio.Scanner
	replies chan Report
	done    chan error // the worker's exit
	cmd     *exec.Cmd
}

func (l *link) send(c command) error {
	b, _ := json.Marshal(c)
	_, err := l.in.Write(append(b, '\n'))
	return err
}

// next returns the worker's next report; a report of type "error", the
// worker's exit and ctx's end are errors.
func (l *link) next(ctx context.Context) (Report, error) {
	select {
	case r, ok := <-l.replies:
		if !ok {
			return Report{}, errors.New("worker exited")
		}
		if r.Type == "error" {
			return r, fmt.Errorf("worker %d: %s", r.Worker, r.Error)
		}
		return r, nil
	case <-ctx.Done():
		return Report{}, ctx.Err()
	}
}

// recv is next for a report that must be of type typ.
func (l *link) recv(ctx context.Context, typ string) (Report, error) {
	r, err := l.next(ctx)
	if err == nil && r.Type != typ {
		err = fmt.Errorf("worker %d: got %q, want %q", r.Worker, r.Type, typ)
	}
	return r, err
}

// sleep waits d, or less if ctx ends first (then it returns ctx's error).
func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// part is worker i's part of n things split as evenly as can be between
// procs workers (the first n%procs get one more).
func part(n, procs, i int) int {
	p := n / procs
	if i < n%procs {
		p++
	}
	return p
}

// Run performs one run and returns its result.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg = cfg.Defaults()
	if !validScenario(cfg.Scenario) {
		return nil, fmt.Errorf("unknown scenario %q (want one of %s)", cfg.Scenario, strings.Join(Scenarios, ", "))
	}
	if cfg.Scenario != "floor" && cfg.Server == nil {
		return nil, errors.New("bench: no server")
	}
	if cfg.Scenario != "floor" && len(cfg.Secret) == 0 {
		return nil, errors.New("bench: no secret to sign tokens with")
	}
	_, _ = RaiseFileLimit()
	if cfg.Log != nil {
		cfg.Log = &syncWriter{w: cfg.Log} // workers' stderr and progress lines share it
	}
	logf := func(format string, args ...any) {
		if cfg.Log != nil {
			fmt.Fprintf(cfg.Log, "bench: "+format+"\n", args...)
		}
	}
	res := &Result{Scenario: cfg.Scenario, Machine: machine(), Server: cfg.Label, At: time.Now().UTC(), Procs: cfg.Procs}
	if cfg.Scenario == "floor" {
		if cfg.Mode != FloorTCP && cfg.Mode != FloorWS {
			return nil, fmt.Errorf("floor: unknown mode %q (tcp, ws)", cfg.Mode)
		}
		if err := runFloor(ctx, cfg, res, logf); err != nil {
			return nil, err
		}
		return res, nil
	}
	runID := randomID()
	wsURL := "ws" + strings.TrimPrefix(cfg.Server.URL(), "http") + protocol.Path

	rooms, idle := cfg.Rooms, 0
	switch cfg.Scenario {
	case "idle":
		rooms, idle = 0, cfg.Conns
	}
	res.Rooms, res.Members = rooms, cfg.Members
	if rooms == 0 {
		res.Members = 0
	}
	pid := cfg.Server.PID()
	if cfg.Scenario == "idle" && pid > 0 {
		if s, err := readProcStat(pid); err == nil {
			res.ServerRSSBeforeBytes = s.RSS
		}
	}

	// Split rooms and idle connections between workers.
	links := make([]*link, cfg.Procs)
	user, rm := 0, 0
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for i := range cfg.Procs {
		nr, ni := part(rooms, cfg.Procs, i), part(idle, cfg.Procs, i)
		job := Job{
			Scenario: cfg.Scenario, Worker: i, RunID: runID, WSURL: wsURL, Secret: cfg.Secret,
			FirstUser: user, FirstRoom: rm, Rooms: nr, Members: cfg.Members, Publishers: cfg.Publishers,
			Idle: ni, TextBytes: cfg.TextBytes, SourceAddrs: cfg.SourceAddrs,
			DialConcurrency: cfg.DialConcurrency, BackoffBase: cfg.BackoffBase, BackoffMax: cfg.BackoffMax,
			Reconnect: cfg.Scenario == "storm", Receipts: cfg.Receipts,
		}
		if cfg.WorkerCPUProfile != "" && cfg.Procs > 1 {
			job.CPUProfile = fmt.Sprintf("%s.worker%d", cfg.WorkerCPUProfile, i)
		}
		user += nr*cfg.Members + ni
		rm += nr
		l, err := startWorker(ctx, cfg, job, &wg)
		if err != nil {
			return nil, err
		}
		links[i] = l
	}
	res.Clients = user
	defer func() {
		for _, l := range links {
			_ = l.in.Close()
		}
		// Let the workers exit on their own (a worker process writes its
		// CPU profile as it exits) before cancel kills what is left.
		deadline := time.After(5 * time.Second)
		for _, l := range links {
			for open := true; open; {
				select {
				case _, open = <-l.replies:
				case <-deadline:
					return
				}
			}
		}
	}()
	all := func(typ string, c *command) ([]Report, error) {
		if c != nil {
			for _, l := range links {
				if err := l.send(*c); err != nil {
					return nil, err
				}
			}
		}
		reps := make([]Report, len(links))
		for i, l := range links {
			r, err := l.recv(ctx, typ)
			if err != nil {
				return nil, err
			}
			reps[i] = r
		}
		return reps, nil
	}

	logf("%s: connecting %d clients with %d process(es) to %s", cfg.Scenario, user, cfg.Procs, cfg.Server.URL())
	t0 := time.Now()
	if _, err := all("ready", nil); err != nil {
		return nil, err
	}
	res.ConnectSeconds = time.Since(t0).Seconds()
	logf("connected in %.1fs", res.ConnectSeconds)

	// share gives worker i its part of a total rate, by its rooms.
	share := func(total float64, i int) float64 {
		if rooms == 0 {
			return 0
		}
		return total * float64(part(rooms, cfg.Procs, i)) / float64(rooms)
	}
	step := func(rate float64, d time.Duration, closed bool) (Step, error) {
		before, _ := readProcStat(pid)
		tool0, toolKnown := toolCPU(links)
		for i, l := range links {
			c := command{Cmd: "load", Rate: share(rate, i), Duration: d}
			if closed {
				c = command{Cmd: "closed", Window: cfg.Window, Duration: d}
			}
			if err := l.send(c); err != nil {
				return Step{}, err
			}
		}
		reps, err := all("step", nil)
		if err != nil {
			return Step{}, err
		}
		s := Step{OfferedPerSec: rate}
		var lat, ack HistSnapshot
		var ws, we int64
		for _, r := range reps {
			s.Sent += r.Sent
			s.Acked += r.Acked
			s.Deliveries += r.Delivered
			s.Backlog += r.Backlog
			lat.Merge(r.Latency)
			ack.Merge(r.AckLatency)
			if ws == 0 || r.WindowStart < ws {
				ws = r.WindowStart
			}
			we = max(we, r.WindowEnd)
		}
		s.Seconds = float64(we-ws) / 1e9
		s.DeliveriesPerSec = float64(s.Deliveries) / s.Seconds
		s.AcksPerSec = float64(s.Acked) / s.Seconds
		s.Latency, s.AckLatency = lat.Summary(), ack.Summary()
		if pid > 0 {
			if after, err := readProcStat(pid); err == nil {
				s.ServerCPUSeconds = (after.CPU - before.CPU).Seconds()
				s.ServerRSSBytes = after.RSS
				if lat.N > 0 {
					s.CPUPer1k = s.ServerCPUSeconds / (float64(lat.N) / 1000)
				}
			}
		}
		logf("step %.0f msg/s: %.0f deliveries/s, p50 %.1f ms, p99 %.1f ms, backlog %d",
			rate, s.DeliveriesPerSec, s.Latency.P50MS, s.Latency.P99MS, s.Backlog)
		if tool1, ok := toolCPU(links); ok && toolKnown && lat.N > 0 {
			s.LoadCPUSeconds = (tool1 - tool0).Seconds()
			s.LoadCPUPer1k = s.LoadCPUSeconds / (float64(lat.N) / 1000)
			logf("step %.0f msg/s: load tool CPU %.2f s, %.1f µs per delivery received (%d)",
				rate, s.LoadCPUSeconds, s.LoadCPUPer1k*1000, lat.N)
		}
		return s, nil
	}

	switch cfg.Scenario {
	case "fanout":
		for _, r := range cfg.Rates {
			s, err := step(r, cfg.Step, false)
			if err != nil {
				return nil, err
			}
			res.Steps = append(res.Steps, s)
		}
	case "latency":
		s, err := step(cfg.Rate, cfg.Duration, false)
		if err != nil {
			return nil, err
		}
		res.Steps = append(res.Steps, s)
	case "write":
		s, err := step(0, cfg.Duration, true)
		if err != nil {
			return nil, err
		}
		res.Steps = append(res.Steps, s)
	case "idle":
		logf("settling %s", cfg.Settle)
		if err := sleep(ctx, cfg.Settle); err != nil {
			return nil, err
		}
		if pid > 0 {
			if s, err := readProcStat(pid); err == nil {
				res.ServerRSSAfterBytes = s.RSS
				res.RSSPerConnBytes = float64(s.RSS-res.ServerRSSBeforeBytes) / float64(max(idle, 1))
			}
		}
	case "resume":
		reps, err := all("resume", &command{Cmd: "resume", Missed: cfg.Missed, Repeat: cfg.Repeat})
		if err != nil {
			return nil, err
		}
		var h HistSnapshot
		for _, r := range reps {
			if r.Error != "" {
				return nil, errors.New(r.Error)
			}
			h.Merge(r.ResumeLatency)
		}
		s := h.Summary()
		res.Resume = &s
	case "storm":
		st, s, err := storm(ctx, cfg, links, share, logf)
		if err != nil {
			return nil, err
		}
		res.Storm = st
		res.Steps = append(res.Steps, s)
	}

	reps, err := all("done", &command{Cmd: "finish", Timeout: cfg.DrainTimeout})
	if err != nil {
		return nil, err
	}
	for _, r := range reps {
		res.TotalSent += r.TotalSent
		res.TotalAcked += r.TotalAcked
		res.Unacked += r.Unacked
		res.Lost += r.Lost
		res.Duplicated += r.Duplicated
		res.Unexpected += r.Unexpected
		res.SendErrors += r.SendErrors
		res.ProtoErrors += r.ProtoErrors
		res.Receipts += r.Receipts
		res.Failed += r.Failed
		res.Errors = append(res.Errors, r.Errors...)
		res.LoadRSS += r.RSSBytes
	}
	return res, nil
}

// storm runs load, takes the server away (kill, graceful restart or
// dropping every connection), waits until every client is back and
// resumed, and lets the load finish.
func storm(ctx context.Context, cfg Config, links []*link, share func(float64, int) float64, logf func(string, ...any)) (*Storm, Step, error) {
	st := &Storm{Mode: cfg.Restart}
	pre := min(cfg.Duration/4, 3*time.Second)
	start := time.Now()
	for i, l := range links {
		if err := l.send(command{Cmd: "load", Rate: share(cfg.Rate, i), Duration: cfg.Duration}); err != nil {
			return nil, Step{}, err
		}
	}
	if err := sleep(ctx, pre); err != nil {
		return nil, Step{}, err
	}
	down := time.Now()
	load0, loadKnown := workersCPU(links, cfg.Server)
	var srv0 time.Duration
	if cfg.Restart == "drop" {
		if ps, err := readProcStat(cfg.Server.PID()); err == nil {
			srv0 = ps.CPU
		}
	}
	switch cfg.Restart {
	case "drop":
		for _, l := range links {
			if err := l.send(command{Cmd: "drop"}); err != nil {
				return nil, Step{}, err
			}
		}
	case "kill", "graceful":
		logf("storm: %s restart of the server", cfg.Restart)
		if err := cfg.Server.Restart(ctx, cfg.Restart == "kill"); err != nil {
			return nil, Step{}, err
		}
	default:
		return nil, Step{}, fmt.Errorf("storm: unknown restart mode %q (kill, graceful, drop)", cfg.Restart)
	}
	ready := time.Now()
	if cfg.Restart == "drop" {
		ready = down
	}
	st.DownSeconds = ready.Sub(down).Seconds()
	for _, l := range links {
		// Since the outage, not since ready: a client that resumed before
		// this process saw the server ready has resumed all the same.
		if err := l.send(command{Cmd: "await", Since: down.UnixNano(), ReadyAt: ready.UnixNano(), Timeout: 60 * time.Second}); err != nil {
			return nil, Step{}, err
		}
	}
	// Replies come back in any order: "dropped", "resumed" and "step".
	var resumed []Report
	var steps []Report
	var h HistSnapshot
	for _, l := range links {
		want := 2
		if cfg.Restart == "drop" {
			want = 3
		}
		for range want {
			r, err := l.next(ctx)
			if err != nil {
				return nil, Step{}, err
			}
			switch r.Type {
			case "resumed":
				resumed = append(resumed, r)
			case "step":
				steps = append(steps, r)
			}
		}
	}
	// Read right after the last worker reported everyone resumed (workers
	// poll every 5 ms), so the window ends at about the last resume.
	if load1, ok := workersCPU(links, cfg.Server); ok && loadKnown {
		st.LoadCPUSeconds = (load1 - load0).Seconds()
	}
	if pid := cfg.Server.PID(); pid > 0 {
		if ps, err := readProcStat(pid); err == nil {
			st.ServerCPUSeconds = (ps.CPU - srv0).Seconds()
		}
	}
	var last int64
	for _, r := range resumed {
		st.Resumed += r.Resumed
		st.Of += r.Clients
		last = max(last, r.LastResumeNS)
		h.Merge(r.ResumeTimes)
		st.Replayed += r.Replayed
		st.Resyncs += r.Resyncs
		st.Reconnects += r.Reconnects
		st.Resent += r.Resent
		st.Dials += r.Dials
		st.Refused += r.Refused
		st.SharedRefusals += r.SharedRefusals
	}
	if last > 0 {
		st.AllResumedAfter = max(float64(last-ready.UnixNano())/1e9, 0)
	}
	if st.Resumed > 0 {
		st.ServerCPUPerConn = st.ServerCPUSeconds / float64(st.Resumed) * 1e6
		st.LoadCPUPerConn = st.LoadCPUSeconds / float64(st.Resumed) * 1e6
	}
	st.ResumeP50 = h.Quantile(0.5).Seconds()
	st.ResumeP99 = h.Quantile(0.99).Seconds()
	var s Step
	s.OfferedPerSec = cfg.Rate
	var lat HistSnapshot
	for _, r := range steps {
		s.Sent += r.Sent
		s.Acked += r.Acked
		s.Deliveries += r.Delivered
		lat.Merge(r.Latency)
	}
	s.Seconds = time.Since(start).Seconds()
	s.Latency = lat.Summary()
	logf("storm: %d resumed, the last %.2fs after the server was ready", st.Resumed, st.AllResumedAfter)
	return st, s, nil
}

// workersCPU is the CPU time of every worker process, from /proc. A worker
// in this process counts as this process (the parent's own work is small)
// when the server is a process of its own; ok is false otherwise.
func workersCPU(links []*link, srv Server) (time.Duration, bool) {
	var sum time.Duration
	for _, l := range links {
		pid := os.Getpid()
		if l.cmd != nil && l.cmd.Process != nil {
			pid = l.cmd.Process.Pid
		} else if srv.PID() == 0 || len(links) > 1 {
			return 0, false
		}
		ps, err := readProcStat(pid)
		if err != nil {
			return 0, false
		}
		sum += ps.CPU
	}
	return sum, true
}

// toolCPU is the CPU time of the load tool's processes, from /proc: this
// one (with any worker it runs) and every worker process.
func toolCPU(links []*link) (time.Duration, bool) {
	self, err := readProcStat(os.Getpid())
	if err != nil {
		return 0, false
	}
	sum := self.CPU
	for _, l := range links {
		if l.cmd == nil || l.cmd.Process == nil {
			continue
		}
		ps, err := readProcStat(l.cmd.Process.Pid)
		if err != nil {
			return 0, false
		}
		sum += ps.CPU
	}
	return sum, true
}

func validScenario(s string) bool {
	for _, v := range Scenarios {
		if v == s {
			return true
		}
	}
	return false
}

func randomID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startWorker starts worker i, in this process when cfg.Procs is 1 and as
// a child process otherwise. The goroutines it starts are tracked by wg,
// which Run waits on; they end when the worker's output ends.
func startWorker(ctx context.Context, cfg Config, job Job, wg *sync.WaitGroup) (*link, error) {
	return startWorkerIn(ctx, cfg, job, wg, cfg.Procs > 1)
}

// startWorkerIn starts a worker as a child process when child is set and
// in this process otherwise.
func startWorkerIn(ctx context.Context, cfg Config, job Job, wg *sync.WaitGroup, child bool) (*link, error) {
	l := &link{replies: make(chan Report, 16), done: make(chan error, 1)}
	var out io.Reader
	if !child {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		l.in, out = inW, outR
		wg.Add(1)
		go func() { // owner: Run, through wg; ends when the input pipe closes
			defer wg.Done()
			err := Worker(ctx, inR, outW)
			_ = inR.CloseWithError(io.EOF)
			_ = outW.CloseWithError(io.EOF)
			l.done <- err
		}()
	} else {
		args := cfg.WorkerCommand
		if len(args) == 0 {
			exe, err := os.Executable()
			if err != nil {
				return nil, err
			}
			args = []string{exe, "bench", "--worker"}
		}
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "PARLEY_BENCH_WORKER=1")
		if n := workerMaxProcs(cfg); n > 0 {
			cmd.Env = append(cmd.Env, fmt.Sprintf("GOMAXPROCS=%d", n))
		}
		if os.Getenv("GODEBUG") == "" {
			// A client's goroutine idles on a shallow stack, which the GC
			// shrinks, and grows it again (copying it) on every
			// reconnect's deep dial path: keep the stacks as grown.
			cmd.Env = append(cmd.Env, "GODEBUG=gcshrinkstackoff=1")
		}
		cmd.Stderr = os.Stderr
		if cfg.Log != nil {
			cmd.Stderr = cfg.Log
		}
		in, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		o, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		l.in, out, l.cmd = in, o, cmd
	}
	b, _ := json.Marshal(job)
	if _, err := l.in.Write(append(b, '\n')); err != nil {
		return nil, err
	}
	l.out = bufio.NewScanner(out)
	l.out.Buffer(make([]byte, 1<<16), 1<<26)
	wg.Add(1)
	go func() { // owner: Run, through wg; ends when the worker's output ends
		defer wg.Done()
		defer close(l.replies)
		for l.out.Scan() {
			var r Report
			if err := json.Unmarshal(l.out.Bytes(), &r); err != nil {
				r = Report{Type: "error", Error: "bad report: " + err.Error()}
			}
			select {
			case l.replies <- r:
			case <-ctx.Done(): // keep reading so the worker never blocks writing
			}
		}
		if l.cmd != nil {
			_ = l.cmd.Wait()
		}
	}()
	return l, nil
}

// workerMaxProcs is the GOMAXPROCS to give a worker process, or 0 to leave
// it to Go (see Config.WorkerMaxProcs).
func workerMaxProcs(cfg Config) int {
	switch {
	case cfg.WorkerMaxProcs > 0:
		return cfg.WorkerMaxProcs
	case cfg.WorkerMaxProcs < 0 || os.Getenv("GOMAXPROCS") != "":
		return 0
	}
	return max(1, runtime.NumCPU()/max(cfg.Procs, 1))
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
