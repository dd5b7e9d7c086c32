package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// chaosSecret signs the run's JWTs and payment callbacks; the processes are
// the run's own, so no secret is read from anywhere.
const chaosSecret = "chaos-secret-0123456789abcdefghijklmnop"

// cluster is every process of a chaos run: its own Redis, NATS and
// PostgreSQL, and two seckill gateways and two workers over them. Nothing
// here touches the machine's shared services.
type cluster struct {
	tmp, out string
	logf     func(string, ...any)

	redis    *redisServer
	nats     *child
	natsAddr string
	pg       *pgCluster
	dsn      string
	gateways []*seckillProc
	workers  []*seckillProc
}

// seckillProc is one `seckill serve --role=…` on a fixed port, so a restart
// comes back where the balancer and the probes expect it.
type seckillProc struct {
	*child
	url string // http://127.0.0.1:port
}

// ready reports whether /readyz answers 200 (all dependencies reachable).
func (s *seckillProc) ready(ctx context.Context) bool { return httpOK(ctx, s.url+"/readyz") }

// seckillEnv is the settings of every seckill process: the run's own stores,
// and safety nets short enough to act within a few-minute run.
func (c *cluster) seckillEnv(name string, port int) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SECKILL_") && !strings.HasPrefix(kv, "GOGC=") {
			env = append(env, kv)
		}
	}
	return append(env,
		"SECKILL_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
		"SECKILL_REDIS_ADDR="+c.redis.addr,
		"SECKILL_REDIS_KEY_PREFIX=sk",
		"SECKILL_NATS_URL=nats://"+c.natsAddr,
		"SECKILL_POSTGRES_DSN="+c.dsn,
		"SECKILL_AUTH_SECRET="+chaosSecret,
		"SECKILL_PAYMENT_SECRET="+chaosSecret,
		"SECKILL_SENTINEL_LOG_DIR="+filepath.Join(c.tmp, "sentinel-"+name),
		"SECKILL_SENTINEL_USER_QPS=1000",
		"SECKILL_SENTINEL_BREAKER_RETRY_MS=1000",
		"SECKILL_WORKER_RECONCILE_GRACE=3s",
		"SECKILL_WORKER_SWEEP_INTERVAL=2s",
		"SECKILL_WORKER_RECOVERY_SETTLE=3s",
		// A killed worker's unacked batch comes back after this, not 30 s.
		"SECKILL_WORKER_ACK_WAIT=5s",
		"SECKILL_LOG_LEVEL=info",
		"SECKILL_LOG_FORMAT=text",
	)
}

// startCluster builds the binaries and starts every process, workers first
// (the first one migrates the database and creates the streams).
func startCluster(ctx context.Context, tmp, out string, logf func(string, ...any)) (_ *cluster, err error) {
	c := &cluster{tmp: tmp, out: out, logf: logf}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	root, err := moduleRoot()
	if err != nil {
		return nil, err
	}
	seckillBin, natsBin, err := buildBinaries(ctx, root, tmp, logf)
	if err != nil {
		return nil, err
	}
	logPath := func(name string) string { return filepath.Join(out, name+".log") }

	if c.redis, err = newRedisServer(tmp, logPath("redis")); err != nil {
		return nil, err
	}
	if err := c.redis.start(); err != nil {
		return nil, err
	}
	natsPort, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	c.natsAddr = "127.0.0.1:" + strconv.Itoa(natsPort)
	c.nats = &child{name: "nats", bin: natsBin, dir: tmp, env: os.Environ(), logPath: logPath("nats"),
		args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-js", "-sd", filepath.Join(tmp, "js")}}
	if err := c.nats.start(); err != nil {
		return nil, err
	}
	logf("initdb + pg_ctl start (PostgreSQL from the installed binaries)")
	if c.pg, err = newPGCluster(ctx, tmp, logPath("postgres-ctl")); err != nil {
		return nil, err
	}
	if err := c.pg.start(ctx); err != nil {
		return nil, err
	}
	if err := c.pg.createDB(ctx, "seckill"); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	c.dsn = c.pg.DSN("seckill")
	if !waitUntil(ctx, 20*time.Second, c.redis.ready) {
		return nil, errors.New("redis-server did not answer PING within 20s")
	}
	if !waitUntil(ctx, 20*time.Second, func(context.Context) bool { return tcpOpen(c.natsAddr) }) {
		return nil, errors.New("nats-server did not listen within 20s")
	}

	newProc := func(role string, i int) (*seckillProc, error) {
		port, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("%s-%d", role, i)
		return &seckillProc{url: "http://127.0.0.1:" + strconv.Itoa(port), child: &child{
			name: name, bin: seckillBin, args: []string{"serve", "--role=" + role},
			dir: tmp, env: c.seckillEnv(name, port), logPath: logPath(name)}}, nil
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
	if err := c.startAndWait(ctx, c.workers[0]); err != nil {
		return nil, err
	}
	for _, p := range []*seckillProc{c.workers[1], c.gateways[0], c.gateways[1]} {
		if err := p.start(); err != nil {
			return nil, err
		}
	}
	for _, p := range []*seckillProc{c.workers[1], c.gateways[0], c.gateways[1]} {
		if err := c.waitReady(ctx, p); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *cluster) startAndWait(ctx context.Context, p *seckillProc) error {
	if err := p.start(); err != nil {
		return err
	}
	return c.waitReady(ctx, p)
}

// waitReady waits up to 60 s for p's /readyz, failing early if p exits.
func (c *cluster) waitReady(ctx context.Context, p *seckillProc) error {
	exited := p.exited()
	ok := waitUntil(ctx, 60*time.Second, func(ctx context.Context) bool {
		select {
		case <-exited:
			return true
		default:
		}
		return p.ready(ctx)
	})
	select {
	case <-exited:
		return fmt.Errorf("%s exited while starting; see %s", p.name, p.logPath)
	default:
	}
	if !ok {
		return fmt.Errorf("%s not ready within 60s; see %s", p.name, p.logPath)
	}
	return nil
}

// close stops everything, senders before what they send to: gateways,
// workers, then NATS, Redis and PostgreSQL.
func (c *cluster) close() {
	for _, p := range append(append([]*seckillProc(nil), c.gateways...), c.workers...) {
		if err := p.stop(20 * time.Second); err != nil {
			c.logf("%v", err)
		}
	}
	if c.nats != nil {
		_ = c.nats.stop(10 * time.Second)
	}
	if c.redis != nil {
		_ = c.redis.stop(10 * time.Second)
	}
	if c.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		// Not running (stopped mid-fault) makes both fail harmlessly.
		if err := c.pg.stop(ctx, "fast"); err != nil {
			_ = c.pg.stop(ctx, "immediate")
		}
		cancel()
		c.pg.serverLog(filepath.Join(c.out, "postgres.log"))
	}
}
