package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotInstalled is returned when a server binary is not on the PATH.
var ErrNotInstalled = errors.New("cluster: not installed")

// RedisOptions configures one redis-server.
type RedisOptions struct {
	// Dir is the server's data folder (created); its --dir.
	Dir string
	// LogPath receives the server's output ("" discards it).
	LogPath string
	// Password, if set, is required of clients (--requirepass).
	Password string
	// Args are passed after the defaults (--save "" --appendonly no) and
	// override them: "--appendonly", "yes" keeps data across a restart.
	Args []string

	port int // fixed port (cluster nodes), 0 = a free one
}

// Redis is a redis-server on 127.0.0.1 that a test or drill owns. Kill and
// Start (or Restart) run it again on the same port and folder: with
// --appendonly yes it reloads its append-only file.
type Redis struct {
	*Proc
	Addr     string
	Port     int
	Dir      string
	password string
}

// StartRedis starts redis-server on a free port and waits until it answers
// PING.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	r, err := newRedis(o)
	if err != nil {
		return nil, err
	}
	if err := r.Restart(ctx); err != nil {
		_ = r.Kill()
		return nil, err
	}
	return r, nil
}

// newRedis prepares (does not start) a redis-server.
func newRedis(o RedisOptions) (*Redis, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("redis-server: %w: %v", ErrNotInstalled, err)
	}
	port := o.port
	if port == 0 {
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", o.Dir,
		"--save", "", "--appendonly", "no"}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password)
	}
	r := &Redis{Addr: addr(port), Port: port, Dir: o.Dir, password: o.Password}
	r.Proc = &Proc{Name: "redis-" + strconv.Itoa(port), Bin: bin, Dir: o.Dir, LogPath: o.LogPath,
		Args: append(args, o.Args...)}
	return r, nil
}

// NewRedis starts a redis-server private to the test (folder under
// t.TempDir()); t.Cleanup kills it. args are RedisOptions.Args.
func NewRedis(t testing.TB, args ...string) *Redis {
	t.Helper()
	return NewRedisWith(t, RedisOptions{Args: args})
}

// NewRedisWith is NewRedis with options; an empty Dir is a t.TempDir().
func NewRedisWith(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := StartRedis(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Kill() })
	return r
}

// Restart starts the server if it is not running and waits until it
// answers PING (not LOADING), failing early if it exits.
func (r *Redis) Restart(ctx context.Context) error {
	if err := r.Start(); err != nil && !errors.Is(err, ErrRunning) {
		return err
	}
	return waitProc(ctx, r.Proc, 20*time.Second, r.Ready)
}

// Ready reports whether the server answers PING.
func (r *Redis) Ready(ctx context.Context) bool {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.password, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	return c.Ping(ctx).Err() == nil
}

// Client returns a client to this server with short timeouts, as seckill
// configures it; the caller closes it.
func (r *Redis) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.password,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond,
		WriteTimeout: 200 * time.Millisecond, MaxRetries: -1})
}

// Close stops the server with SIGKILL (a test's data is thrown away).
func (r *Redis) Close() error { return r.Kill() }

// waitProc waits up to within for ready, failing early when p exits.
func waitProc(ctx context.Context, p *Proc, within time.Duration, ready func(context.Context) bool) error {
	exited := p.Exited()
	ok := WaitUntil(ctx, within, func(ctx context.Context) bool {
		return isClosed(exited) || ready(ctx)
	})
	if isClosed(exited) {
		return fmt.Errorf("cluster: %s exited while starting%s", p.Name, seeLog(p))
	}
	if !ok {
		return fmt.Errorf("cluster: %s not ready within %v%s", p.Name, within, seeLog(p))
	}
	return nil
}

func seeLog(p *Proc) string {
	if p.LogPath == "" {
		return ""
	}
	return "; see " + filepath.Clean(p.LogPath)
}
