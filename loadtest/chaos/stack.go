package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
)

// chaosSecret signs the run's JWTs and payment callbacks; the processes are
// the run's own, so no secret is read from anywhere.
const chaosSecret = "chaos-secret-0123456789abcdefghijklmnop"

// stack is every process of a chaos run: its own Redis, NATS and
// PostgreSQL, and two seckill gateways and two workers over them. Nothing
// here touches the machine's shared services.
type stack struct {
	tmp, out string
	logf     func(string, ...any)

	redis    *redisServer
	nats     *cluster.NATS
	pg       *cluster.Postgres
	dsn      string
	gateways []*cluster.Seckill
	workers  []*cluster.Seckill
}

// seckillEnv is the settings of every seckill process: the run's own stores,
// and safety nets short enough to act within a few-minute run.
func (c *stack) seckillEnv(name string) map[string]string {
	return map[string]string{
		"SECKILL_REDIS_ADDR":                c.redis.Addr,
		"SECKILL_REDIS_KEY_PREFIX":          "sk",
		"SECKILL_NATS_URL":                  c.nats.URL,
		"SECKILL_POSTGRES_DSN":              c.dsn,
		"SECKILL_AUTH_SECRET":               chaosSecret,
		"SECKILL_PAYMENT_SECRET":            chaosSecret,
		"SECKILL_SENTINEL_LOG_DIR":          filepath.Join(c.tmp, "sentinel-"+name),
		"SECKILL_SENTINEL_USER_QPS":         "1000",
		"SECKILL_SENTINEL_BREAKER_RETRY_MS": "1000",
		"SECKILL_WORKER_RECONCILE_GRACE":    "3s",
		"SECKILL_WORKER_SWEEP_INTERVAL":     "2s",
		"SECKILL_WORKER_RECOVERY_SETTLE":    "3s",
		// A killed worker's unacked batch comes back after this, not 30 s.
		"SECKILL_WORKER_ACK_WAIT": "5s",
		"SECKILL_LOG_LEVEL":       "info",
		"SECKILL_LOG_FORMAT":      "text",
	}
}

// startStack builds the binaries and starts every process, workers first
// (the first one migrates the database and creates the streams).
func startStack(ctx context.Context, tmp, out string, logf func(string, ...any)) (_ *stack, err error) {
	c := &stack{tmp: tmp, out: out, logf: logf}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	logf("go build seckill and nats-server (the version go.mod pins)")
	seckillBin, err := cluster.SeckillBinary(ctx)
	if err != nil {
		return nil, err
	}
	natsBin, err := cluster.NATSServerBinary(ctx)
	if err != nil {
		return nil, err
	}
	logPath := func(name string) string { return filepath.Join(out, name+".log") }

	if c.redis, err = startRedisServer(ctx, tmp, logPath("redis")); err != nil {
		return nil, err
	}
	if c.nats, err = cluster.StartNATS(ctx, cluster.NATSOptions{Dir: filepath.Join(tmp, "js"), LogDir: out, Bin: natsBin}); err != nil {
		return nil, err
	}
	logf("initdb + pg_ctl start (PostgreSQL from the installed binaries)")
	if c.pg, err = cluster.StartPostgres(ctx, cluster.PostgresOptions{Dir: tmp, LogPath: logPath("postgres-ctl")}); err != nil {
		return nil, err
	}
	if err := c.pg.CreateDB(ctx, "seckill"); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	c.dsn = c.pg.DSN("seckill")

	newProc := func(role string, i int) (*cluster.Seckill, error) {
		name := fmt.Sprintf("%s-%d", role, i)
		return cluster.NewSeckillProc(ctx, cluster.SeckillOptions{Name: name, Bin: seckillBin,
			Args: []string{"--role=" + role}, Env: c.seckillEnv(name), Dir: tmp, LogPath: logPath(name)})
	}
	for i := 1; i <= 2; i++ {
		w, err := newProc("worker", i)
		if err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
		g, err := newProc("gateway", i)
		if err != nil {
			return nil, err
		}
		c.gateways = append(c.gateways, g)
	}
	logf("starting worker-1 (migrates), then worker-2, gateway-1, gateway-2")
	if err := c.workers[0].Restart(ctx); err != nil {
		return nil, err
	}
	rest := []*cluster.Seckill{c.workers[1], c.gateways[0], c.gateways[1]}
	for _, p := range rest {
		if err := p.Start(); err != nil {
			return nil, err
		}
	}
	for _, p := range rest {
		if err := p.WaitReady(ctx, 60*time.Second); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// close stops everything, senders before what they send to: gateways,
// workers, then NATS, Redis and PostgreSQL.
func (c *stack) close() {
	for _, p := range append(append([]*cluster.Seckill(nil), c.gateways...), c.workers...) {
		if err := p.Stop(20 * time.Second); err != nil {
			c.logf("%v", err)
		}
	}
	if c.nats != nil {
		_ = c.nats.Stop(10 * time.Second)
	}
	if c.redis != nil {
		_ = c.redis.Stop(10 * time.Second)
	}
	if c.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_ = c.pg.Close(ctx)
		cancel()
		c.pg.CopyServerLog(filepath.Join(c.out, "postgres.log"))
	}
	cluster.RemoveBinaries()
}
