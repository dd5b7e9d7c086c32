package stocktest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server process private to one test, for faults that
// must not touch the shared Redis: stop it, start it again (empty: it keeps
// nothing on disk, as a restart without persistence loses everything).
type Server struct {
	t    testing.TB
	Addr string
	cmd  *exec.Cmd
	dir  string
	args []string
}

// StartServer starts redis-server on a free port; t.Cleanup stops it.
// Extra arguments (e.g. "--appendonly", "yes") are passed to redis-server.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("stocktest: redis-server not installed: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	s := &Server{t: t, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: t.TempDir(), args: args}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start starts the server (again, on the same folder: with --appendonly yes
// it reloads its append-only file) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	_, port, _ := net.SplitHostPort(s.Addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", s.dir}
	s.cmd = exec.Command("redis-server", append(args, s.args...)...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("stocktest: start redis-server: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for rdb.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("stocktest: redis-server on %s did not answer", s.Addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server with SIGKILL (as a crash would: with appendfsync
// everysec the last second of writes may be lost) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Client returns a client to this server with short timeouts, as seckill
// configures it; the test closes it.
func (s *Server) Client() redis.UniversalClient {
	return redis.NewClient(&redis.Options{Addr: s.Addr, DialTimeout: 200 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
}

// String names the server in test messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
