package cluster

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SeckillOptions configures one `seckill serve` process.
type SeckillOptions struct {
	// Name names the process in errors and logs ("gateway-1").
	Name string
	// Bin is the executable; "" builds this tree's once (SeckillBinary).
	Bin string
	// Args follow "serve": "--role=gateway", "--config", path.
	Args []string
	// Env is the configuration, SECKILL_* names to values; the process
	// inherits this process's environment without any SECKILL_* (a
	// developer's exports must not leak in). SECKILL_HTTP_ADDR is set to
	// the process's port unless Env sets it.
	Env map[string]string
	// Port is the HTTP port; 0 takes a free one. It stays across restarts.
	Port int
	// Dir is the working directory: no stray configs/seckill.yaml there.
	Dir string
	// LogPath or Out receives the process's output (as in Proc).
	LogPath string
	Out     io.Writer
}

// Seckill is one `seckill serve` process on a fixed port, so a restart
// comes back where clients and probes expect it.
type Seckill struct {
	*Proc
	Port int
	URL  string // http://127.0.0.1:Port
}

// NewSeckillProc prepares (does not start) a seckill process.
func NewSeckillProc(ctx context.Context, o SeckillOptions) (*Seckill, error) {
	var err error
	if o.Bin == "" {
		if o.Bin, err = SeckillBinary(ctx); err != nil {
			return nil, err
		}
	}
	if o.Port == 0 {
		if o.Port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if o.Name == "" {
		o.Name = "seckill-" + strconv.Itoa(o.Port)
	}
	vars := map[string]string{"SECKILL_HTTP_ADDR": addr(o.Port)}
	for k, v := range o.Env {
		vars[k] = v
	}
	s := &Seckill{Port: o.Port, URL: "http://" + addr(o.Port)}
	s.Proc = &Proc{Name: o.Name, Bin: o.Bin, Args: append([]string{"serve"}, o.Args...),
		Env: ChildEnv(vars), Dir: o.Dir, LogPath: o.LogPath, Out: o.Out}
	return s, nil
}

// StartSeckill starts a seckill process and waits for its /readyz.
func StartSeckill(ctx context.Context, o SeckillOptions) (*Seckill, error) {
	s, err := NewSeckillProc(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := s.Restart(ctx); err != nil {
		_ = s.Kill()
		return nil, err
	}
	return s, nil
}

// NewSeckill starts a seckill process for the test (working directory a
// t.TempDir() when o.Dir is empty) and waits until it is ready; t.Cleanup
// kills it if the test did not stop it.
func NewSeckill(t testing.TB, o SeckillOptions) *Seckill {
	t.Helper()
	s := PrepareSeckill(t, o)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// PrepareSeckill is NewSeckill without the start: the binary is built and
// the port taken, so the test starts the clock of its own waits after that.
func PrepareSeckill(t testing.TB, o SeckillOptions) *Seckill {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // may build
	defer cancel()
	s, err := NewSeckillProc(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Kill() })
	return s
}

// Restart starts the process if it is not running and waits up to 60 s
// for /readyz (every dependency reachable), failing early if it exits.
func (s *Seckill) Restart(ctx context.Context) error {
	if err := s.Start(); err != nil && !errors.Is(err, ErrRunning) {
		return err
	}
	return s.WaitReady(ctx, 60*time.Second)
}

// WaitReady waits up to within for /readyz, failing early if the process
// exits.
func (s *Seckill) WaitReady(ctx context.Context, within time.Duration) error {
	return waitProc(ctx, s.Proc, within, s.Ready)
}

// Ready reports whether /readyz answers 200.
func (s *Seckill) Ready(ctx context.Context) bool { return HTTPOK(ctx, s.URL+"/readyz") }

// HTTPOK reports whether GET url answers 200 within 500 ms.
func HTTPOK(ctx context.Context, url string) bool {
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

// ChildEnv is this process's environment without any SECKILL_* setting or
// GOGC (a developer's exports must not leak into the processes under test),
// plus vars in a stable order.
func ChildEnv(vars map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") && !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+vars[k])
	}
	return env
}
