package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one process the chaos run owns: started, killed and started again
// with the same command line, its output appended to one log file in the
// output folder so a restart's lines follow the crash's.
type child struct {
	name    string
	bin     string
	args    []string
	env     []string // the whole environment of the process
	dir     string   // working directory
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process exited
}

// start starts the process (again). It fails if it is already running.
func (c *child) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd != nil && !closed(c.done) {
		return fmt.Errorf("%s: already running", c.name)
	}
	f, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "==== chaos: start %s at %s\n", c.name, time.Now().Format("15:04:05.000"))
	cmd := exec.Command(c.bin, c.args...)
	cmd.Env, cmd.Dir = c.env, c.dir
	// An *os.File, not a pipe: Wait never waits on a grandchild holding it.
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); f.Close(); close(done) }()
	c.cmd, c.done = cmd, done
	return nil
}

// pid is the current process id, 0 when none ran yet.
func (c *child) pid() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// exited returns a channel closed when the current process has exited.
func (c *child) exited() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return c.done
}

// signal sends sig to the current process and waits up to within for it to
// exit; a process still running then is killed.
func (c *child) signal(sig syscall.Signal, within time.Duration) error {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.mu.Unlock()
	if cmd == nil || closed(done) {
		return nil
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: %v: %w", c.name, sig, err)
	}
	t := time.NewTimer(within)
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("%s: still running %v after %v; killed", c.name, within, sig)
}

// kill9 is a crash: SIGKILL, then wait for the exit.
func (c *child) kill9() error { return c.signal(syscall.SIGKILL, 10*time.Second) }

// stop is a clean stop: SIGTERM, at most within, then SIGKILL.
func (c *child) stop(within time.Duration) error { return c.signal(syscall.SIGTERM, within) }

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// moduleRoot finds the seckill module root from the working directory up, so
// `go run ./loadtest` (root) and `go test` (loadtest/) both build the same tree.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 8 {
		f, err := os.Open(filepath.Join(dir, "go.mod"))
		if err == nil {
			sc := bufio.NewScanner(f)
			ok := sc.Scan() && strings.TrimSpace(sc.Text()) == "module github.com/seckill/seckill"
			f.Close()
			if ok {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return "", errors.New("not inside the github.com/seckill/seckill module")
}

// buildBinaries builds seckill from this tree and nats-server from the
// version go.mod pins, into dir.
func buildBinaries(ctx context.Context, root, dir string, logf func(string, ...any)) (seckillBin, natsBin string, err error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	seckillBin, natsBin = filepath.Join(dir, "seckill"), filepath.Join(dir, "nats-server")
	for _, b := range [][]string{
		{"build", "-o", seckillBin, "./cmd/seckill"},
		{"build", "-o", natsBin, "github.com/nats-io/nats-server/v2"},
	} {
		logf("go %s", strings.Join(b, " "))
		cmd := exec.CommandContext(ctx, goTool, b...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("go %s: %w\n%s", strings.Join(b, " "), err, out)
		}
	}
	return seckillBin, natsBin, nil
}

// freeLoopbackPort returns a port that was free on 127.0.0.1 a moment ago.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitUntil polls ok every 50 ms until it returns true, ctx ends, or within
// passes.
func waitUntil(ctx context.Context, within time.Duration, ok func(context.Context) bool) bool {
	deadline := time.Now().Add(within)
	for {
		if ok(ctx) {
			return true
		}
		if time.Now().After(deadline) || sleepCtx(ctx, 50*time.Millisecond) != nil {
			return false
		}
	}
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// httpOK reports whether GET url answers 200 within 500 ms.
func httpOK(ctx context.Context, url string) bool {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// tcpOpen reports whether addr accepts a connection.
func tcpOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
