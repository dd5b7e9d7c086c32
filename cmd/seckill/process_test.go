package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"testing"
	"time"

	"github.com/seckill/seckill/order/ordertest"
)

// The end-to-end tests run the real binary, built once per test run.
var builtBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if builtBinary.dir != "" {
		_ = os.RemoveAll(builtBinary.dir)
	}
	os.Exit(code)
}

// seckillBinary builds ./cmd/seckill once and returns the executable's path.
func seckillBinary(t *testing.T) string {
	t.Helper()
	builtBinary.once.Do(func() {
		builtBinary.dir, builtBinary.err = os.MkdirTemp("", "seckill-e2e-bin-")
		if builtBinary.err != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		builtBinary.path = filepath.Join(builtBinary.dir, "seckill")
		cmd := exec.Command(goTool, "build", "-o", builtBinary.path, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			builtBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if builtBinary.err != nil {
		t.Fatal(builtBinary.err)
	}
	return builtBinary.path
}

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
func childEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") {
			env = append(env, kv)
		}
	}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	return env
}

// logLine is one structured (JSON) log record of a child process.
type logLine map[string]any

func (l logLine) msg() string { s, _ := l["msg"].(string); return s }

// process is a running `seckill serve` whose log is captured and parsed.
type process struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	url  string // http://127.0.0.1:port

	mu    sync.Mutex
	raw   bytes.Buffer
	lines []logLine

	done    chan struct{} // closed once the process has exited
	waitErr error
}

// startProcess starts `seckill serve args...` with env. t.Cleanup kills it if
// the test did not stop it, and prints its log if the test failed.
func startProcess(t *testing.T, name string, httpPort int, env map[string]string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(seckillBinary(t), append([]string{"serve"}, args...)...)
	cmd.Dir = t.TempDir() // no stray configs/seckill.yaml, no ./data in the source tree
	cmd.Env = childEnv(env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = cmd.Stderr // the log is on stderr; anything on stdout lands there too
	p := &process{t: t, name: name, cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", httpPort), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: start: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.raw.Write(sc.Bytes())
			p.raw.WriteByte('\n')
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				p.lines = append(p.lines, l)
			}
			p.mu.Unlock()
		}
		p.waitErr = cmd.Wait() // after the pipe is drained, as exec requires
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", name, p.log())
		}
	})
	return p
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

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitReady polls /readyz until it answers 200.
func (p *process) waitReady(within time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		if p.exited() {
			p.t.Fatalf("%s exited before it was ready (%v)", p.name, p.waitErr)
		}
		resp, err := client.Get(p.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s not ready after %v (last: %v)", p.name, within, errOrStatus(resp, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func errOrStatus(resp *http.Response, err error) any {
	if err != nil {
		return err
	}
	return resp.Status
}

// terminate sends SIGTERM.
func (p *process) terminate() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Errorf("%s: SIGTERM: %v", p.name, err)
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *process) waitExit(within time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(within):
		return -1, fmt.Errorf("%s still running %v after SIGTERM", p.name, within)
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		return ee.ExitCode(), nil
	}
	if p.waitErr != nil {
		return -1, p.waitErr
	}
	return 0, nil
}
