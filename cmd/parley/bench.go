package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/parleychat/parley/internal/auth"
	"github.com/parleychat/parley/internal/bench"
)

// benchCmd is `parley bench SCENARIO`: the load tool (internal/bench).
// Without --url it starts a server of its own on a temporary data dir: a
// child `parley serve` process by default, so the server's CPU and memory
// can be read from /proc apart from the load tool's, or in this process
// with --server inproc (which --cpuprofile then profiles together with the
// load). Rate limits are off on a server it starts; a server given by
// --url must have them off too (or high), since the load comes from a few
// loopback addresses. The floor scenario starts no Parley server: it
// measures the machine's loopback floor for fanout's shape (see
// internal/bench/floor.go).
type benchCmd struct {
	Scenario string `arg:"" optional:"" enum:"fanout,latency,idle,storm,write,resume,floor," default:"" help:"fanout, latency, idle, storm, write, resume, or floor (no Parley server: a writer process writes --frame-bytes frames to --conns loopback connections at each --rates deliveries/s; reports deliveries/s and writer and reader CPU s per 1k deliveries, the floor of one write(2) per delivery on this machine)."`
	Worker   bool   `hidden:"" env:"PARLEY_BENCH_WORKER" help:"Run as a worker process of a parent bench (internal)."`

	URL       string `help:"Drive the running server at this base URL (http://127.0.0.1:8080) instead of starting one."`
	Secret    string `env:"PARLEY_SECRET" help:"The server's token secret (default: read from --data-dir when --url is set)."`
	DataDir   string `default:"./parley-data" help:"With --url: the server's data dir, to read its secret from."`
	ServerPID int    `help:"With --url: the server's process id, to read its CPU and memory from /proc."`
	Server    string `default:"child" enum:"child,inproc" help:"Without --url: run the server as a child process (child) or in this process (inproc)."`
	Store     string `help:"Without --url, --server child: the serve --store value (empty: SQLite; or a postgres:// URL)."`
	ServerLog string `help:"Without --url: file for the started server's log (default: discarded)."`
	Transport string `help:"Without --url, --server child: the serve --ws-transport value (gobwas or coder; default: serve's)."`

	Procs      int           `help:"Worker processes (default: one per 8000 connections)."`
	Rooms      int           `help:"Rooms (fanout 1000, latency 100, write 100, resume 1; storm: conns/members)."`
	Members    int           `help:"Members per room (fanout, latency, storm 10; write 1; resume 2)."`
	Publishers int           `help:"Members of each room that send (default: all)."`
	Conns      int           `help:"idle, storm: connections (default 15000); floor: 10000."`
	Rates      []float64     `sep:"," help:"fanout: total messages/s of each step (default 2000,5000,10000,20000); floor: deliveries/s (default 20000,50000,100000,200000)."`
	Step       time.Duration `help:"fanout, floor: length of each step (default 5s)."`
	Rate       float64       `help:"latency, storm: messages/s (default 1000)."`
	Duration   time.Duration `help:"latency, write: length; storm: length of the load around the restart (default 10s)."`
	Settle     time.Duration `help:"idle: wait before reading the server's RSS (default 5s)."`
	Restart    string        `enum:"kill,graceful,drop," default:"" help:"storm: kill (-9, child only), graceful (SIGTERM), or drop (the clients drop every connection); default kill."`
	Window     int           `help:"write: sends in flight per publisher (default 8)."`
	Missed     int           `help:"resume: events missed before resuming (default 1000)."`
	Repeat     int           `help:"resume: repeats per room (default 10)."`
	TextBytes  int           `help:"Message text size in bytes (default 64)."`
	Mode       string        `enum:"tcp,ws," default:"" help:"floor: tcp (raw TCP writes) or ws (coder/websocket framing, as the server writes; no JSON, no store); default tcp."`
	FrameBytes int           `help:"floor: bytes per frame (default 200, about a newMessage event)."`
	Receipts   bool          `help:"Clients report what they receive (the delivered op, at most once per second each, as the SDK): the cost of delivery receipts."`

	SourceAddrs  int           `help:"Loopback source addresses 127.0.0.2... to spread connections over (default 32)."`
	DrainTimeout time.Duration `help:"How long to wait at the end for every message to arrive (default 15s)."`
	WorkerProcs  int           `name:"worker-gomaxprocs" help:"GOMAXPROCS of each worker process (default: the CPUs divided between the workers, at least 1; -1: Go's default)."`
	Pin          int           `default:"-1" help:"Run the child server on this CPU alone and the load tool (and its workers) on every other CPU (Linux; e.g. --pin 1 on two cores: server on CPU 1, load on CPU 0). -1: no pinning."`
	JSON         bool          `help:"Print the result as JSON."`
	CPUProfile   string        `help:"Write this process's CPU profile here (with --server inproc it covers the server); worker processes write theirs to this path + .workerN."`
	TimerSlack   time.Duration `default:"-1ns" env:"PARLEY_BENCH_TIMER_SLACK" help:"On Linux with one P (e.g. under taskset -c 0): the threads' timer slack, as serve's --timer-slack (set by executing itself again at start; worker processes inherit it), so the Go runtime's sysmon naps up to this long instead of 20 µs while the load runs: less of the tool's CPU per message on the core it shares with what it measures. Any timer may fire up to this late, the pacers' 1 ms sleeps too. Negative (the default): 1ms for write, whose sends are paced by the acknowledgements, and the system's for every other scenario, which a timer paces (measured: fanout p50 about 0.6 ms later at 18k deliveries/s with 1ms). 0: the system's. Ignored with more than one P."`
}

func (c *benchCmd) Run(ctx context.Context, s *streams) error {
	if execSelf {
		// Before anything is read or opened: on success this does not
		// return. A worker started by a parent that set it already has
		// it (inherited) and does not execute again.
		if err := applyTimerSlack(c.timerSlack()); err != nil {
			fmt.Fprintf(s.err, "parley: %v (running with the system's timer slack)\n", err)
		}
	}
	if c.Worker {
		return bench.Worker(ctx, s.in, s.out)
	}
	if c.Scenario == "" {
		return errors.New("bench: name a scenario: " + strings.Join(bench.Scenarios, ", "))
	}
	if n, err := bench.RaiseFileLimit(); err == nil && n < 1024 {
		fmt.Fprintf(s.err, "bench: only %d open files allowed\n", n)
	}
	cfg := bench.Config{
		Scenario: c.Scenario, Procs: c.Procs, Rooms: c.Rooms, Members: c.Members, Publishers: c.Publishers,
		Conns: c.Conns, Rates: c.Rates, Step: c.Step, Rate: c.Rate, Duration: c.Duration, Settle: c.Settle,
		Restart: c.Restart, Window: c.Window, Missed: c.Missed, Repeat: c.Repeat, TextBytes: c.TextBytes,
		Mode: c.Mode, FrameBytes: c.FrameBytes, Receipts: c.Receipts,
		SourceAddrs: c.SourceAddrs, DrainTimeout: c.DrainTimeout, Log: s.err,
		WorkerCPUProfile: c.CPUProfile, WorkerMaxProcs: c.WorkerProcs,
	}
	d := cfg.Defaults()
	if cfg.Procs == 0 {
		clients := d.Rooms * d.Members
		if d.Scenario == "idle" || d.Scenario == "floor" {
			clients = d.Conns
		}
		cfg.Procs = max(1, (clients+7999)/8000)
	}
	var serverCPUs []int
	if c.Pin >= 0 {
		if c.Scenario == "floor" || c.URL != "" || c.Server == "inproc" {
			return errors.New("bench: --pin needs a child server (not floor, --url or --server inproc)")
		}
		var load []int
		for i := range runtime.NumCPU() {
			if i != c.Pin {
				load = append(load, i)
			}
		}
		if len(load) == 0 || c.Pin >= runtime.NumCPU() {
			return fmt.Errorf("bench: --pin %d leaves no CPU for the load (%d CPUs)", c.Pin, runtime.NumCPU())
		}
		if err := bench.PinSelf(load); err != nil {
			return err
		}
		serverCPUs = []int{c.Pin}
	}
	if c.Scenario == "floor" {
		return c.report(ctx, s, cfg)
	}

	srv, secret, label, err := c.server(ctx, s.err, serverCPUs)
	if err != nil {
		return err
	}
	defer srv.Close()
	cfg.Server, cfg.Secret, cfg.Label = srv, secret, label
	return c.report(ctx, s, cfg)
}

// timerSlack is the slack to run with (see TimerSlack): a negative one
// is 1 ms for the closed-loop write scenario and none otherwise. A worker
// (no scenario) keeps what its parent gave it.
func (c *benchCmd) timerSlack() time.Duration {
	if c.TimerSlack >= 0 {
		return c.TimerSlack
	}
	if c.Scenario == "write" {
		return time.Millisecond
	}
	return 0
}

// report runs cfg (profiling this process with --cpu-profile) and prints
// the result.
func (c *benchCmd) report(ctx context.Context, s *streams, cfg bench.Config) error {
	if c.CPUProfile != "" {
		f, err := os.Create(c.CPUProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if c.JSON {
		err = res.WriteJSON(s.out)
	} else {
		err = res.WriteTable(s.out)
	}
	if err != nil {
		return err
	}
	if !res.OK() {
		return fmt.Errorf("bench: %d lost, %d duplicated, %d unexpected, %d unacknowledged, %d clients failed",
			res.Lost, res.Duplicated, res.Unexpected, res.Unacked, res.Failed)
	}
	return nil
}

// server returns the server to drive, its secret and a label for the report.
func (c *benchCmd) server(ctx context.Context, logw io.Writer, cpus []int) (bench.Server, []byte, string, error) {
	if c.URL != "" {
		secret, err := loadSecret(c.Secret, c.DataDir, false)
		if err != nil {
			return nil, nil, "", err
		}
		return bench.External(strings.TrimRight(c.URL, "/"), c.ServerPID), secret, "running server at " + c.URL, nil
	}
	dir, err := os.MkdirTemp("", "parley-bench-")
	if err != nil {
		return nil, nil, "", err
	}
	raw, err := auth.NewSecret()
	if err != nil {
		return nil, nil, "", err
	}
	secret := []byte(fmt.Sprintf("%x", raw))
	var slog io.Writer = io.Discard
	if c.ServerLog != "" {
		f, err := os.Create(c.ServerLog)
		if err != nil {
			return nil, nil, "", err
		}
		slog = f // closed when the process exits
	}
	if c.Server == "inproc" {
		if c.Store != "" {
			return nil, nil, "", errors.New("bench: --server inproc runs SQLite only; use --server child for --store")
		}
		s := &bench.InProcServer{DataDir: dir, Secret: secret}
		if err := s.Start(ctx); err != nil {
			return nil, nil, "", err
		}
		return cleanup{s, dir}, secret, "in-process server, SQLite in " + dir, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, nil, "", err
	}
	args := []string{"serve", "--addr", "{addr}", "--data-dir", "{data}", "--log-level", "warn",
		"--messages-per-second=-1", "--ip-messages-per-second=-1", "--typing-per-second=-1",
		"--connects-per-second=-1", "--presence-per-second=-1", "--reads-per-second=-1",
		"--conversation-writes-per-second=-1", "--read-marks-per-second=-1", "--deletes-per-second=-1",
		"--uploads-per-second=-1", "--conns-per-ip=-1"}
	store := "SQLite"
	if c.Store != "" {
		args = append(args, "--store", c.Store)
		store = "PostgreSQL"
		if !strings.HasPrefix(c.Store, "postgres") {
			store = c.Store
		}
	}
	if c.Transport != "" {
		args = append(args, "--ws-transport", c.Transport)
	}
	s := &bench.ChildServer{Exe: exe, Args: args, Env: []string{"PARLEY_SECRET=" + string(secret)}, DataDir: dir, Log: slog, CPUs: cpus}
	if err := s.Start(ctx); err != nil {
		return nil, nil, "", err
	}
	pinned := ""
	if len(cpus) > 0 {
		pinned = fmt.Sprintf(", pinned to CPU %v, load on the others", cpus)
	}
	return cleanup{s, dir}, secret, fmt.Sprintf("child `parley serve` (%s, rate limits off, pid %d%s)", store, s.PID(), pinned), nil
}

// cleanup removes the temporary data dir after closing the server.
type cleanup struct {
	bench.Server
	dir string
}

func (c cleanup) Close() error {
	err := c.Server.Close()
	os.RemoveAll(c.dir)
	return err
}
