package stocktest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
)

// Server is a redis-server process private to one test, for faults that
// must not touch the shared Redis: stop it, start it again (empty: it keeps
// nothing on disk, as a restart without persistence loses everything). The
// process is run by the harness, loadtest/cluster.
type Server struct {
	t    testing.TB
	Addr string
	r    *cluster.Redis
}

// StartServer starts redis-server on a free port; t.Cleanup stops it.
// Extra arguments (e.g. "--appendonly", "yes") are passed to redis-server.
func StartServer(t testing.TB, args ...string) *Server {
	t.Helper()
	r := cluster.NewRedis(t, args...)
	return &Server{t: t, Addr: r.Addr, r: r}
}

// Start starts the server (again, on the same folder: with --appendonly yes
// it reloads its append-only file) and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.r.Restart(ctx); err != nil {
		s.t.Fatalf("stocktest: %v", err)
	}
}

// Stop kills the server with SIGKILL (as a crash would: with appendfsync
// everysec the last second of writes may be lost) and waits for it to exit.
func (s *Server) Stop() { _ = s.r.Kill() }

// Client returns a client to this server with short timeouts, as seckill
// configures it; the test closes it.
func (s *Server) Client() redis.UniversalClient { return s.r.Client() }

// String names the server in test messages.
func (s *Server) String() string { return fmt.Sprintf("redis-server %s", s.Addr) }
