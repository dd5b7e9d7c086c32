package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
)

// chaosSecret signs the run's JWTs and payment callbacks; the processes are
// the run's own, so no secret is read from anywhere.
const chaosSecret = "chaos-secret-0123456789abcdefghijklmnop"

// stack is every process of a chaos run: its own Redis, NATS and
// PostgreSQL, and the seckill gateways and workers over them. Nothing here
// touches the machine's shared services. The single topology has redis and
// nats, the cluster one redisCluster and natsCluster.
type stack struct {
	tmp, out string
	logf     func(string, ...any)

	redis        *redisServer
	nats         *cluster.NATS
	redisCluster *cluster.RedisCluster
	natsCluster  *cluster.NATSCluster
	pg           *cluster.Postgres
	dsn          string
	gateways     []*cluster.Seckill
	workers      []*cluster.Seckill
}

// seckillEnv is the settings of every seckill process: the run's own stores,
// and safety nets short enough to act within a few-minute run.
func (c *stack) seckillEnv(name string) map[string]string {
	env := map[string]string{
		"SECKILL_REDIS_ADDR":                c.redisAddr(),
		"SECKILL_REDIS_KEY_PREFIX":          "sk",
		"SECKILL_NATS_URL":                  c.natsURL(),
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
	if c.natsCluster != nil {
		env["SECKILL_NATS_REPLICAS"] = "3"
	}
	return env
}

// redisAddr is SECKILL_REDIS_ADDR: the one server, or every cluster node.
func (c *stack) redisAddr() string {
	if c.redisCluster != nil {
		return strings.Join(c.redisCluster.Addrs(), ",")
	}
	return c.redis.Addr
}

// natsURL is SECKILL_NATS_URL: the one server, or every node's URL.
func (c *stack) natsURL() string {
	if c.natsCluster != nil {
		return c.natsCluster.URLs()
	}
	return c.nats.URL
}

// redisReader is the run's own client of its Redis, for checkpoints and
// verification. On a cluster it reloads the slot map every 500 ms (go-redis
// waits 60 s by default), so reads find the new master soon after a
// failover; a read that fails anyway is retried by the checkpoint.
func (c *stack) redisReader() redis.UniversalClient {
	if c.redisCluster != nil {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.redisCluster.Addrs(),
			DialTimeout: 300 * time.Millisecond, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
			ClusterStateReloadInterval: 500 * time.Millisecond})
	}
	return redis.NewClient(&redis.Options{Addr: c.redis.Addr, MaxRetries: -1,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 3 * time.Second})
}

// clusterRedisArgs are the Redis Cluster nodes' settings on top of the
// harness's (cluster-enabled, appendonly): fsync every second, the node
// timeout after which an unresponsive master is failed over, and the
// README's advice for production: the other shards keep answering while
// one fails over (cluster-require-full-coverage no).
var clusterRedisArgs = []string{"--appendfsync", "everysec", "--cluster-node-timeout", "2000",
	"--cluster-require-full-coverage", "no"}

// startStores starts Redis and NATS of the topology.
func (c *stack) startStores(ctx context.Context, topology, natsBin string) (err error) {
	logPath := func(name string) string { return filepath.Join(c.out, name+".log") }
	if topology == topologyCluster {
		c.logf("starting Redis Cluster (3 masters + 3 replicas, AOF everysec, node timeout 2 s) and 3 NATS nodes")
		if c.redisCluster, err = cluster.StartRedisCluster(ctx, cluster.RedisClusterOptions{Masters: 3, Replicas: 1,
			Dir: filepath.Join(c.tmp, "redis"), LogDir: c.out, Args: clusterRedisArgs}); err != nil {
			return err
		}
		c.natsCluster, err = cluster.StartNATSCluster(ctx, cluster.NATSOptions{Dir: filepath.Join(c.tmp, "js"), LogDir: c.out, Bin: natsBin}, 3)
		return err
	}
	if c.redis, err = startRedisServer(ctx, c.tmp, logPath("redis")); err != nil {
		return err
	}
	c.nats, err = cluster.StartNATS(ctx, cluster.NATSOptions{Dir: filepath.Join(c.tmp, "js"), LogDir: c.out, Bin: natsBin})
	return err
}

// startStack builds the binaries and starts every process of the topology,
// workers first (the first one migrates the database and creates the
// streams).
func startStack(ctx context.Context, cfg chaosConfig, tmp, out string, logf func(string, ...any)) (_ *stack, err error) {
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

	if err := c.startStores(ctx, cfg.Topology, natsBin); err != nil {
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
	for i := 1; i <= cfg.workers(); i++ {
		w, err := newProc("worker", i)
		if err != nil {
			return nil, err
		}
		c.workers = append(c.workers, w)
	}
	for i := 1; i <= cfg.gateways(); i++ {
		g, err := newProc("gateway", i)
		if err != nil {
			return nil, err
		}
		c.gateways = append(c.gateways, g)
	}
	rest := append(append([]*cluster.Seckill(nil), c.workers[1:]...), c.gateways...)
	var names []string
	for _, p := range rest {
		names = append(names, p.Name)
	}
	logf("starting worker-1 (migrates), then %s", strings.Join(names, ", "))
	if err := c.workers[0].Restart(ctx); err != nil {
		return nil, err
	}
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
	if c.natsCluster != nil {
		for _, n := range c.natsCluster.Nodes {
			if n.Proc != nil {
				_ = n.Stop(10 * time.Second)
			}
		}
	}
	if c.redis != nil {
		_ = c.redis.Stop(10 * time.Second)
	}
	if c.redisCluster != nil {
		c.redisCluster.Close()
	}
	if c.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		_ = c.pg.Close(ctx)
		cancel()
		c.pg.CopyServerLog(filepath.Join(c.out, "postgres.log"))
	}
	cluster.RemoveBinaries()
}
