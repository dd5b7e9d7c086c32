package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
)

// serve runs the process until ctx is cancelled (SIGTERM), then shuts down
// in this order: stop accepting HTTP and finish in-flight requests; stop the
// worker (order/worker's doc.go: intake, closers, recovery; the persister
// finishes its batch); stop the gateway's background loops; give back the
// semaphore permits and the node-id lease; close NATS (drain), Redis,
// PostgreSQL. Senders stop before the things they send to.
func serve(ctx context.Context, log *slog.Logger, cfg Config, role string) error {
	log.Info("starting seckill", "role", role, "config", cfg)
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(cfg.Runtime.GCPercent)
	}
	if cfg.Auth.Secret == devSecret || cfg.Payment.Secret == devSecret {
		log.Warn("using the built-in development secret; set SECKILL_AUTH_SECRET and SECKILL_PAYMENT_SECRET in production")
	}
	pool, err := openPostgres(ctx, cfg.Postgres)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := order.Migrate(ctx, pool); err != nil {
		return err
	}
	// The items the shard checks guard: fed by the gateway's catalog and
	// the worker's recovery from PostgreSQL, read by the OnConnect hook.
	keys := stock.Keys{Prefix: cfg.Redis.KeyPrefix}
	guarded := stock.NewRegistry()
	rdb := openRedis(cfg.Redis, stock.ShardHook(guarded, keys, log))
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping %s: %w", cfg.Redis.Addr, err)
	}
	_, isCluster := rdb.(*redis.ClusterClient)
	mode, err := stock.ParseDurability(cfg.Redis.Durability, isCluster)
	if err != nil {
		return err
	}
	log.Info("redis durability", "mode", mode, "setting", cfg.Redis.Durability, "cluster", isCluster,
		"wait_replicas", cfg.Redis.WaitReplicas, "wait_timeout", cfg.Redis.WaitTimeout)
	broker, err := order.OpenBroker(ctx, log, order.BrokerConfig{
		URL: cfg.NATS.URL, DataDir: cfg.NATS.DataDir, Listen: cfg.NATS.Listen,
		Stream: cfg.NATS.Stream, Subject: cfg.NATS.Subject,
		DuplicateWindow: cfg.NATS.DuplicateWindow, Replicas: cfg.NATS.Replicas,
	})
	if err != nil {
		return err
	}
	defer broker.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	store := order.NewStore(pool)
	sk := stock.NewStore(rdb, keys, stock.WithRegistry(guarded), stock.WithLogger(log),
		stock.WithDurability(stock.Durability{Mode: mode, Replicas: cfg.Redis.WaitReplicas, Timeout: cfg.Redis.WaitTimeout}))
	durability := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "seckill_redis_durability_mode",
		Help: "1 for the redis.durability mode in force (label mode: fence or replica)."}, []string{"mode"})
	durability.WithLabelValues(string(mode)).Set(1)
	reg.MustRegister(durability)
	checks := map[string]func(context.Context) error{
		"postgres": store.Ping,
		"redis":    func(ctx context.Context) error { return rdb.Ping(ctx).Err() },
		"nats":     broker.Ping,
	}

	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	goRun := func(f func(context.Context) error) {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f(bg) }()
	}

	var handler http.Handler
	var cleanup []func(context.Context)
	var wk *worker.Worker
	// release stops the worker (soft: batches in hand are finished), then the
	// gateway's background loops, then gives back the semaphore permits and
	// the node-id lease, with time of its own: a shutdown that used up its
	// budget on HTTP must still release them.
	release := func() {
		if wk != nil {
			// A batch in hand is redelivered after AckWait anyway: the soft
			// stop has that long before it turns hard.
			wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.Worker.AckWait)
			wk.Stop(wctx)
			wcancel()
		}
		stopBG()
		wg.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		for _, f := range cleanup {
			f(rctx)
		}
	}
	if role == "all" || role == "gateway" {
		h, clean, err := startGateway(ctx, log, cfg, reg, sk, store, broker, checks, goRun)
		if err != nil {
			release()
			return err
		}
		handler, cleanup = h, clean
	} else {
		handler = gateway.NewOps(log, reg, checks)
	}
	if role == "all" || role == "worker" {
		w, err := startWorker(ctx, log, cfg, reg, sk, store, broker)
		if err != nil {
			release()
			return err
		}
		wk = w
	}

	srv := &http.Server{
		Addr: cfg.HTTP.Addr, Handler: handler,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, ReadTimeout: cfg.HTTP.ReadTimeout,
		WriteTimeout: cfg.HTTP.WriteTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	var pprofSrv *http.Server
	if cfg.HTTP.PprofAddr != "" {
		// Profiling stays off the public listener.
		pprofSrv = &http.Server{Addr: cfg.HTTP.PprofAddr, Handler: pprofMux(), ReadHeaderTimeout: 5 * time.Second}
		go func() {
			log.Info("pprof listening", "addr", cfg.HTTP.PprofAddr)
			if err := pprofSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Warn("pprof listener stopped", "err", err)
			}
		}()
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		release()
		return fmt.Errorf("http: %w", err)
	}
	srvErr := make(chan error, 1)
	go func() { srvErr <- srv.Serve(ln) }()
	log.Info("http listening", "addr", ln.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-srvErr:
		runErr = fmt.Errorf("http: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if pprofSrv != nil {
		_ = pprofSrv.Close()
	}
	release()
	log.Info("stopped")
	return runErr
}
