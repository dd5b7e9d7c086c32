package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order/ordertest"
)

// The end-to-end tests run the real binary, built once per test run by the
// harness (loadtest/cluster), which starts and stops every child process.
func TestMain(m *testing.M) {
	code := m.Run()
	cluster.RemoveBinaries()
	os.Exit(code)
}

// seckillBinary builds ./cmd/seckill once and returns the executable's path.
func seckillBinary(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := cluster.SeckillBinary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	p, err := cluster.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand contract)
	return hex.EncodeToString(b)
}

// newDatabase creates an empty PostgreSQL database of the test's own and
// returns its DSN; t.Cleanup drops it (after the processes using it are gone,
// since cleanups run last-registered first).
func newDatabase(t *testing.T) string {
	t.Helper()
	return ordertest.NewDatabase(t, "seckill_e2e")
}

// childEnv is this process's environment without any SECKILL_* setting (a
// developer's exports must not leak into the processes under test), plus vars.
func childEnv(vars map[string]string) []string { return cluster.ChildEnv(vars) }

// logLine is one structured (JSON) log record of a child process.
type logLine map[string]any

func (l logLine) msg() string { s, _ := l["msg"].(string); return s }

// process is a running `seckill serve` whose log is captured and parsed.
type process struct {
	*cluster.Seckill
	t    *testing.T
	name string
	url  string // http://127.0.0.1:port

	mu    sync.Mutex
	raw   bytes.Buffer
	part  []byte // a line not yet ended
	lines []logLine
}

// startProcess starts `seckill serve args...` with env. t.Cleanup kills it if
// the test did not stop it, and prints its log if the test failed.
func startProcess(t *testing.T, name string, httpPort int, env map[string]string, args ...string) *process {
	t.Helper()
	p := &process{t: t, name: name}
	// The log is on stderr; anything on stdout lands there too.
	p.Seckill = cluster.PrepareSeckill(t, cluster.SeckillOptions{Name: name, Bin: seckillBinary(t),
		Args: args, Env: env, Port: httpPort, Out: p})
	p.url = p.URL
	if err := p.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			_ = p.Kill() // the whole log: the process is gone
			t.Logf("---- %s log ----\n%s", name, p.log())
		}
	})
	return p
}

// Write takes the child's output: every complete line is kept, and parsed
// when it is a JSON record.
func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.raw.Write(b)
	p.part = append(p.part, b...)
	for {
		i := bytes.IndexByte(p.part, '\n')
		if i < 0 {
			break
		}
		var l logLine
		if json.Unmarshal(p.part[:i], &l) == nil {
			p.lines = append(p.lines, l)
		}
		p.part = p.part[i+1:]
	}
	return len(b), nil
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

// records returns the log records whose msg is msg.
func (p *process) records(msg string) []logLine {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []logLine
	for _, l := range p.lines {
		if l.msg() == msg {
			out = append(out, l)
		}
	}
	return out
}

// waitReady waits until /readyz answers 200; the test fails if the process
// exits first or is not ready within the given time.
func (p *process) waitReady(within time.Duration) {
	p.t.Helper()
	if err := p.WaitReady(context.Background(), within); err != nil {
		p.t.Fatal(err)
	}
}

// terminate sends SIGTERM.
func (p *process) terminate() {
	p.t.Helper()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		p.t.Errorf("%s: SIGTERM: %v", p.name, err)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *process) waitExit(within time.Duration) (int, error) {
	select {
	case <-p.Exited():
	case <-time.After(within):
		return -1, fmt.Errorf("%s still running %v after SIGTERM", p.name, within)
	}
	return p.ExitCode()
}
