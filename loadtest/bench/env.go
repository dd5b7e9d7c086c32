package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/stock"
)

const benchSecret = "bench-secret-0123456789abcdefghijklmnop"

// env is everything one bench run starts and talks to.
type env struct {
	dir                      string
	seckillBin               string
	db, dsn, adminDSN        string
	prefix                   string
	natsURL                  string
	procEnv                  []string
	nats, worker, gw, baseln *proc
	gwURL, baseURL, gwPprof  string
	baseRounds               int     // baseline runs so far, each on its own activity
	gwIdle                   float64 // the gateway's CPU ms per second with no traffic
	workerHTTP               string
	pool                     *pgxpool.Pool
	redisAddr                string                // the gateway's redis.addr: one server, or cluster nodes comma-separated
	rdb                      redis.UniversalClient // a cluster client when topo.cluster
	topo                     *topology
	redisCluster             *cluster.RedisCluster // the bench's own (-cluster), killed at close
	broker                   *order.Broker
	store                    *order.Store
	auth                     *gateway.Auth
	admin                    string
}

// newEnv starts what every case needs on the machine's PostgreSQL: a
// database of its own, NATS, a worker and a gateway, over the Redis of
// o.redisAddr or, with o.cluster, over a Redis Cluster of its own.
func newEnv(ctx context.Context, dir, seckillBin, natsBin string, o options) (*env, error) {
	e := &env{dir: dir, seckillBin: seckillBin, adminDSN: o.pgDSN, redisAddr: o.redisAddr}
	stamp := strconv.FormatInt(time.Now().Unix(), 10)
	e.db, e.prefix = "seckill_bench_"+stamp, "bench"+stamp
	u, err := url.Parse(o.pgDSN)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	u.Path = "/" + e.db
	e.dsn = u.String()
	admin, err := pgx.Connect(ctx, o.pgDSN)
	if err != nil {
		return nil, err
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+e.db); err != nil {
		return nil, err
	}
	if o.cluster {
		log.Printf("starting a Redis Cluster: %d masters, %d replica each, append-only file fsynced every second",
			clusterMasters, clusterReplicas)
		e.redisCluster, err = cluster.StartRedisCluster(ctx, cluster.RedisClusterOptions{Masters: clusterMasters,
			Replicas: clusterReplicas, Dir: filepath.Join(dir, "redis"), LogDir: dir,
			Args: []string{"--appendfsync", "everysec", "--save", ""}})
		if err != nil {
			e.close()
			return nil, err
		}
		e.redisAddr = strings.Join(e.redisCluster.Addrs(), ",") // every node: a client needs only one that answers
	}
	addrs := strings.Split(e.redisAddr, ",")
	if e.topo, err = discoverTopology(ctx, addrs); err != nil {
		e.close()
		return nil, err
	}
	if e.topo.cluster {
		e.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, PoolSize: 64, Protocol: 2})
	} else {
		e.rdb = redis.NewClient(&redis.Options{Addr: addrs[0], PoolSize: 64, Protocol: 2})
	}

	nats, err := cluster.StartNATS(ctx, cluster.NATSOptions{Dir: filepath.Join(dir, "js"), LogDir: dir, Bin: natsBin})
	if err != nil {
		e.close()
		return nil, err
	}
	e.nats, e.natsURL = &proc{Proc: nats.Proc, pid: nats.PID()}, nats.URL
	e.procEnv = []string{
		"SECKILL_POSTGRES_DSN=" + e.dsn, "SECKILL_REDIS_ADDR=" + e.redisAddr, "SECKILL_REDIS_KEY_PREFIX=" + e.prefix,
		"SECKILL_NATS_URL=" + e.natsURL, "SECKILL_SENTINEL_LOG_DIR=" + filepath.Join(dir, "sentinel"),
		"SECKILL_SENTINEL_BUY_QPS=1000000", "SECKILL_SENTINEL_USER_QPS=1000", "SECKILL_LOG_LEVEL=warn",
		"SECKILL_AUTH_SECRET=" + benchSecret, "SECKILL_PAYMENT_SECRET=" + benchSecret,
	}
	if err := e.startWorker(ctx); err != nil {
		e.close()
		return nil, err
	}
	gwPort := freePort()
	e.gwURL = "http://127.0.0.1:" + itoa(gwPort)
	e.gwPprof = "127.0.0.1:" + itoa(freePort())
	if e.gw, err = start("gateway", dir, append(e.procEnv, "SECKILL_HTTP_ADDR=127.0.0.1:"+itoa(gwPort), "SECKILL_HTTP_PPROF_ADDR="+e.gwPprof),
		e.seckillBin, "serve", "--role=gateway"); err != nil {
		e.close()
		return nil, err
	}
	if err := e.gw.waitHTTP(ctx, e.gwURL+"/readyz", 30*time.Second); err != nil {
		e.close()
		return nil, err
	}
	if e.pool, err = pgxpool.New(ctx, e.dsn); err != nil {
		e.close()
		return nil, err
	}
	e.store = order.NewStore(e.pool)
	e.broker, err = order.OpenBroker(ctx, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		order.BrokerConfig{URL: e.natsURL, Stream: "SECKILL_ORDERS", Subject: "seckill.orders"})
	if err != nil {
		e.close()
		return nil, err
	}
	e.auth = gateway.NewAuth(benchSecret)
	if e.admin, err = e.auth.Mint("admin", gateway.RoleAdmin, 6*time.Hour); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) startWorker(ctx context.Context) error {
	port := freePort()
	e.workerHTTP = "http://127.0.0.1:" + itoa(port)
	var err error
	if e.worker, err = start("worker", e.dir, append(e.procEnv, "SECKILL_HTTP_ADDR=127.0.0.1:"+itoa(port)),
		e.seckillBin, "serve", "--role=worker"); err != nil {
		return err
	}
	return e.worker.waitHTTP(ctx, e.workerHTTP+"/readyz", 30*time.Second)
}

// startBaseline runs this binary's baseline mode on an item warmed directly.
func (e *env) startBaseline(ctx context.Context, redisAddr string, stockN int64) error {
	// A new activity per round: the same users buy again.
	e.baseRounds++
	aid := int64(e.baseRounds)
	keys := stock.Keys{Prefix: e.prefix + "base"}
	st := stock.NewStore(e.rdb, keys)
	if _, err := st.Warm(ctx, stock.ItemMeta{ActivityID: aid, ItemID: 1, Total: stockN, PriceCents: 99900,
		StartAt: time.Now().Add(-time.Minute), EndAt: time.Now().Add(6 * time.Hour), PerUserLimit: 1, PayTimeout: 15 * time.Minute}); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	port := freePort()
	e.baseURL = "http://127.0.0.1:" + itoa(port)
	if e.baseln, err = start("baseline", e.dir, nil, self, "baseline", "--addr", "127.0.0.1:"+itoa(port),
		"--redis", redisAddr, "--prefix", keys.Prefix, "--activity", itoa(int(aid)), "--item", "1"); err != nil {
		return err
	}
	return e.baseln.waitHTTP(ctx, e.baseURL+"/healthz", 10*time.Second)
}

// close stops every process, then drops the database and the Redis keys.
func (e *env) close() {
	for _, p := range []*proc{e.gw, e.baseln, e.worker} {
		p.stop()
	}
	if e.broker != nil {
		e.broker.Close()
	}
	e.nats.stop()
	if e.pool != nil {
		e.pool.Close()
	}
	ctx := context.Background()
	if e.rdb != nil {
		e.rdb.Close()
	}
	if e.topo != nil {
		if e.redisCluster == nil {
			// Someone else's Redis: take back what the bench wrote.
			for _, s := range e.topo.shards {
				iter := s.master.cl.Scan(ctx, 0, e.prefix+"*", 5000).Iterator()
				for iter.Next(ctx) {
					s.master.cl.Unlink(ctx, iter.Val())
				}
			}
		}
		e.topo.close()
	}
	if e.redisCluster != nil {
		e.redisCluster.Close()
	}
	if admin, err := pgx.Connect(ctx, e.adminDSN); err == nil {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+e.db+" WITH (FORCE)"); err != nil {
			log.Printf("drop %s: %v", e.db, err)
		}
		admin.Close(ctx)
	}
}

// infoInt reads an integer field of a Redis INFO reply.
func infoInt(info, field string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// promCounters reads the named counters from a Prometheus text endpoint.
func promCounters(url string, names ...string) (map[string]float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		for _, n := range names {
			if v, ok := strings.CutPrefix(line, n+" "); ok {
				out[n], _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
			}
		}
	}
	return out, nil
}
