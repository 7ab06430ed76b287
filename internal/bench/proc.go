package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// RaiseFileLimit raises RLIMIT_NOFILE to its hard limit and returns the
// new soft limit. Every open WebSocket costs one descriptor on each side.
func RaiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// procStat is a process's CPU time and resident memory from /proc.
type procStat struct {
	CPU time.Duration // user + system
	RSS int64         // bytes
}

// clockTicks is USER_HZ, which is 100 on every Linux architecture Go
// supports.
const clockTicks = 100

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name is in parentheses and may hold spaces; fields
	// after it are space separated: state is field 3, utime 14, stime 15,
	// rss (pages) 24.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("bad /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return procStat{}, errors.New("short /proc stat")
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	rss, _ := strconv.ParseInt(f[21], 10, 64)
	return procStat{
		CPU: time.Duration(ut+st) * time.Second / clockTicks,
		RSS: rss * int64(os.Getpagesize()),
	}, nil
}

func selfRSS() int64 {
	s, err := readProcStat(os.Getpid())
	if err != nil {
		return 0
	}
	return s.RSS
}

// Server is a Parley server the load tool drives.
type Server interface {
	// URL is the server's base URL, "http://127.0.0.1:PORT".
	URL() string
	// PID is the server's process id for /proc figures, or 0 when the
	// server shares the load tool's process or is not local.
	PID() int
	// Restart stops the server (kill: SIGKILL, otherwise gracefully) and
	// starts it again on the same data and address; it returns when the
	// server answers /readyz.
	Restart(ctx context.Context, kill bool) error
	// Close stops the server.
	Close() error
}

// External returns the Server at url that the load tool did not start;
// pid, when not 0, is its local process id for /proc figures.
func External(url string, pid int) Server { return external{url: url, pid: pid} }

// external is a server the load tool did not start.
type external struct {
	url string
	pid int
}

func (e external) URL() string { return e.url }
func (e external) PID() int    { return e.pid }
func (e external) Restart(context.Context, bool) error {
	return errors.New("cannot restart a server the load tool did not start (use --restart drop)")
}
func (e external) Close() error { return nil }

// ChildServer runs `parley serve` as a child process on a data directory,
// so its CPU and memory can be read from /proc apart from the load tool's.
type ChildServer struct {
	Exe     string   // the parley binary
	Args    []string // serve arguments; "{addr}" and "{data}" are replaced
	Env     []string
	DataDir string
	Addr    string
	Log     io.Writer
	// CPUs, when set, restrict the child to these CPUs from its start
	// (as `taskset -c` would; Linux only). Its Go runtime then sizes
	// GOMAXPROCS to them.
	CPUs []int

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when the current child's Wait returns; the
	// goroutine that waits is owned by the ChildServer and ends with the
	// process.
	exited chan struct{}
}

// Start starts the child and waits until it is ready.
func (s *ChildServer) Start(ctx context.Context) error {
	if s.Addr == "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		s.Addr = ln.Addr().String()
		ln.Close()
	}
	args := make([]string, len(s.Args))
	for i, a := range s.Args {
		a = strings.ReplaceAll(a, "{addr}", s.Addr)
		args[i] = strings.ReplaceAll(a, "{data}", s.DataDir)
	}
	cmd := exec.Command(s.Exe, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	if err := startPinned(s.CPUs, cmd.Start); err != nil {
		return fmt.Errorf("start server: %w", err)
	}
	exited := make(chan struct{})
	go func() { // owner: the ChildServer; ends when the child exits
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return waitReady(ctx, s.URL(), exited)
}

func waitReady(ctx context.Context, url string, exited chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("server exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("server not ready: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (s *ChildServer) URL() string { return "http://" + s.Addr }

func (s *ChildServer) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *ChildServer) stop(kill bool) error {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if kill {
		_ = cmd.Process.Kill()
	} else {
		_ = cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	return nil
}

// Restart implements Server.
func (s *ChildServer) Restart(ctx context.Context, kill bool) error {
	if err := s.stop(kill); err != nil {
		return err
	}
	return s.Start(ctx)
}

// Close stops the child gracefully.
func (s *ChildServer) Close() error { return s.stop(false) }

// machine describes where a run happened, for the report.
func machine() string {
	model := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				model = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(strings.SplitN(string(b), "\n", 2)[0])
		if len(f) >= 2 {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			mem = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s), %s RAM, Linux %s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}

func tempDir() (string, error) { return os.MkdirTemp("", "parley-bench-") }

func removeAll(dir string) { _ = os.RemoveAll(filepath.Clean(dir)) }
