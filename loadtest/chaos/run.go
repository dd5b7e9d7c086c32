package chaos

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/loadtest/scenario"
)

// chaosRun is one chaos run in progress: its processes, the balancer in
// front of the gateways, the load's session, the probes, the faults and the
// checkpoints.
type chaosRun struct {
	cfg            chaosConfig
	stdout, stderr io.Writer // stdout also goes to <out>/report.txt

	cl     *stack
	lb     *balancer
	rdb    redis.UniversalClient // the run's Redis (a cluster client on a cluster), read-only: checkpoints and verification
	auth   *gateway.Auth
	client *http.Client // the probes' client
	r      *scenario.Session
	load   *chaosLoad
	probes []*probe
	cs     clusterState // the cluster faults' shared state
	faults []*fault
	snaps  []*snapshot    // before each fault, then the final one
	began  time.Time      // the run started (setup included)
	t0     time.Time      // the load started
	wg     sync.WaitGroup // probes

	logMu sync.Mutex
}

// logf prints a timeline line to stderr, seconds since the load started.
func (cr *chaosRun) logf(format string, args ...any) {
	cr.logMu.Lock()
	defer cr.logMu.Unlock()
	at := fmt.Sprintf("setup %.1fs", time.Since(cr.began).Seconds())
	if !cr.t0.IsZero() {
		at = fmt.Sprintf("%5.1fs", time.Since(cr.t0).Seconds())
	}
	fmt.Fprintf(cr.stderr, "[chaos %s] %s\n", at, fmt.Sprintf(format, args...))
}

// activities are the load's activity, then the probes', in fault order.
func (cr *chaosRun) activities() []scenario.Activity {
	out := []scenario.Activity{cr.r.Act}
	for _, p := range cr.probes {
		out = append(out, p.act)
	}
	return out
}

// since is t in seconds since the load started.
func (cr *chaosRun) since(t time.Time) float64 { return t.Sub(cr.t0).Seconds() }

// runChaosRun starts the processes, runs the load with the faults, drains,
// verifies and prints the table. An error means the run could not be
// carried out; failed checks are in the Result.
func runChaosRun(ctx context.Context, cfg chaosConfig, stdout, stderr io.Writer) (*scenario.Result, error) {
	if err := os.MkdirAll(cfg.Load.Out, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	reportFile, err := os.Create(filepath.Join(cfg.Load.Out, "report.txt"))
	if err != nil {
		return nil, fmt.Errorf("report file: %w", err)
	}
	defer reportFile.Close()
	cr := &chaosRun{cfg: cfg, stdout: io.MultiWriter(stdout, reportFile), stderr: stderr,
		auth: gateway.NewAuth(chaosSecret), began: time.Now()}
	tmp, err := chaosTmp()
	if err != nil {
		return nil, err
	}
	if cfg.Keep {
		cr.logf("temp folder kept: %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	if cr.cl, err = startStack(ctx, cfg, tmp, cfg.Load.Out, cr.logf); err != nil {
		return nil, err
	}
	defer cr.cl.close()
	var urls []string
	for _, g := range cr.cl.gateways {
		urls = append(urls, g.URL)
	}
	if cr.lb, err = newBalancer(urls); err != nil {
		return nil, err
	}
	bctx, stopBG := context.WithCancel(ctx)
	defer stopBG()
	if err := cr.lb.start(bctx); err != nil {
		return nil, err
	}
	defer cr.lb.close()
	if cr.cl.redisCluster != nil {
		logFile, err := os.Create(filepath.Join(cfg.Load.Out, "go-redis.log"))
		if err != nil {
			return nil, err
		}
		goRedisLog.to(logFile)
		defer func() { goRedisLog.to(io.Discard); logFile.Close() }()
	}
	cr.rdb = cr.cl.redisReader()
	defer cr.rdb.Close()
	dialer := &net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}
	cr.client = &http.Client{Timeout: cfg.Load.Timeout, Transport: &http.Transport{
		DialContext: dialer.DialContext, MaxIdleConns: 500, MaxIdleConnsPerHost: 500, IdleConnTimeout: 30 * time.Second}}

	cfg.Load.BaseURL, cfg.Load.PostgresDSN, cfg.Load.RedisAddr = cr.lb.url, cr.cl.dsn, cr.cl.redisAddr()
	cr.cfg = cfg
	if err := cr.newSession(ctx); err != nil {
		return nil, err
	}
	if err := cr.waitCatalogs(ctx); err != nil {
		return nil, err
	}
	cr.printHeader()
	if cr.cl.redis != nil {
		go cr.cl.redis.sample(bctx)
	}

	// The load and the faults, side by side.
	cr.t0 = time.Now()
	sctx, stopFaults := context.WithCancel(ctx)
	defer stopFaults()
	scheduled := make(chan struct{})
	go func() { defer close(scheduled); cr.schedule(sctx, cr.t0) }()
	out, err := cr.r.Attack(ctx, cfg.Load.Duration+cr.load.Tail(cfg.Load))
	if err != nil {
		stopFaults() // the run is over; do not wait for the rest of the schedule
	}
	<-scheduled
	cr.wg.Wait()
	if err != nil {
		return nil, err
	}
	cr.logf("load over; draining")
	cr.r.Report(out)

	st, drainNote, err := cr.r.Drain(ctx)
	if err != nil {
		return nil, err
	}
	cr.snaps = append(cr.snaps, cr.checkpoint(ctx, "after the drain", 5*time.Second))
	cr.logf("drained (%s); verifying", drainNote)
	f, err := cr.r.Gather(ctx, st)
	if err != nil {
		return nil, err
	}
	f.DrainNote = drainNote
	ev, err := cr.evaluate(ctx)
	if err != nil {
		return nil, err
	}
	checks := append(cr.r.Invariants(f), cr.load.Checks(cr.r, f)...)
	checks = append(checks, ev.Checks()...)
	cr.r.PrintChecks(f, checks)
	table := ev.table()
	fmt.Fprint(cr.stdout, "\n"+table)
	if cr.cl.redisCluster != nil {
		fmt.Fprint(cr.stdout, "\n"+ev.clusterParagraph()+"\n")
	} else {
		fmt.Fprint(cr.stdout, "\n"+ev.redisParagraph(ctx)+"\n")
	}
	if err := os.WriteFile(filepath.Join(cfg.Load.Out, "chaos-table.txt"), []byte(table), 0o644); err != nil {
		return nil, err
	}
	pass := 0
	for _, c := range checks {
		if c.Pass {
			pass++
		}
	}
	fmt.Fprintf(cr.stdout, "\nchaos: %d of %d checks passed; logs, results.bin, plot.html and chaos-table.txt in %s\n",
		pass, len(checks), cfg.Load.Out)
	return &scenario.Result{Scenario: Name, Activity: cr.r.Act.ID, Item: cr.r.Act.ItemID,
		Accepted: len(cr.r.Accepted), Requests: out.Requests(), Checks: checks, Out: cfg.Load.Out}, nil
}

// newSession creates the load's activity and the probes' (one per fault),
// mints the tokens and plans the load, as runScenario does for the others.
func (cr *chaosRun) newSession(ctx context.Context) error {
	cfg := cr.cfg.Load
	cr.load = &chaosLoad{run: cr, fated: map[int64]bool{}}
	ttl := cfg.Duration + cr.load.Tail(cfg) + cfg.DrainTimeout + cfg.PayTimeout + 10*time.Minute
	adminToken, err := cr.auth.Mint("loadtest-admin", gateway.RoleAdmin, ttl)
	if err != nil {
		return fmt.Errorf("mint admin token: %w", err)
	}
	r := &scenario.Session{
		Config: cfg, Scenario: cr.load, Stdout: cr.stdout, Stderr: cr.stderr,
		API: scenario.NewAPI(cfg.BaseURL, adminToken), Signer: gateway.NewSigner(cfg.PaymentSecret),
		RNG: rand.New(rand.NewPCG(cfg.Seed, 0x5ec)), Accepted: map[int64]int{},
	}
	cr.r = r
	open := time.Hour + cfg.Duration + cr.load.Tail(cfg)
	name := "chaos " + time.Now().UTC().Format(time.RFC3339)
	if r.Act, err = r.API.CreateAndPublish(ctx, scenario.ActivitySpec{Name: name, Open: open,
		PayTimeout: cfg.PayTimeout, Limit: cfg.Limit, Stock: cfg.Stock, PriceCents: 1999}); err != nil {
		return err
	}
	shard, err := cr.shardOf(ctx, r.Act) // "" on a single Redis
	if err != nil {
		return err
	}
	for i, k := range cr.cfg.kinds() {
		var a scenario.Activity
		// A Redis cluster fault's probe sells out on the shard it fails over:
		// publish probe items until one lands there (a third do).
		for try := 0; ; try++ {
			if a, err = r.API.CreateAndPublish(ctx, scenario.ActivitySpec{Name: fmt.Sprintf("%s probe %d", name, i+1), Open: open,
				PayTimeout: cfg.PayTimeout, Limit: 1, Stock: cr.cfg.ProbeStock, PriceCents: 999}); err != nil {
				return err
			}
			if !k.redisShard() || shard == "" {
				break
			}
			s, err := cr.shardOf(ctx, a)
			if err != nil {
				return err
			}
			if s == shard {
				break
			}
			if try == 40 {
				return fmt.Errorf("no probe item of 40 landed on the load item's shard (%s)", shard)
			}
		}
		cr.probes = append(cr.probes, &probe{act: a, base: a.ID * 10_000_000, accepted: map[int64]time.Time{}})
	}
	r.UserBase = r.Act.ID * 10_000_000
	r.Tokens = make([]string, cfg.Users)
	for b := range r.Tokens {
		if r.Tokens[b], err = cr.auth.Mint(strconv.FormatInt(r.UserID(b), 10), "", ttl); err != nil {
			return fmt.Errorf("mint user token: %w", err)
		}
	}
	buyBody := fmt.Appendf(nil, `{"activity_id":"%d","item_id":"%d","quantity":1}`, r.Act.ID, r.Act.ItemID)
	r.Src = scenario.NewSource(cfg.Rate, cfg.BaseURL, func(b int) string { return r.Tokens[b] }, r.Signer.Sign, buyBody)
	r.Src.AddPlanned(cr.load.Plan(r)...)
	return nil
}

// printHeader describes the processes, the load and the schedule.
func (cr *chaosRun) printHeader() {
	c, r, w := cr.cfg, cr.r, cr.stdout
	fmt.Fprintf(w, "seckill chaos run, %s topology\n", c.Topology)
	if cr.cl.redisCluster != nil {
		fmt.Fprintf(w, "  own processes: Redis Cluster %s (3 masters + 3 replicas, appendonly, fsync everysec, node timeout 2 s), "+
			"nats-server ×3 %s (-js, streams R3), PostgreSQL 127.0.0.1:%d (initdb, %s)\n",
			cr.cl.redisAddr(), cr.cl.natsURL(), cr.cl.pg.Port, cr.cl.pg.Bindir())
	} else {
		fmt.Fprintf(w, "  own processes: redis-server %s (appendonly, fsync everysec), nats-server %s (-js), PostgreSQL 127.0.0.1:%d (initdb, %s)\n",
			cr.cl.redis.Addr, cr.cl.nats.Addr(), cr.cl.pg.Port, cr.cl.pg.Bindir())
	}
	for _, p := range append(append([]*cluster.Seckill(nil), cr.cl.gateways...), cr.cl.workers...) {
		fmt.Fprintf(w, "  %-9s %s (pid %d)\n", p.Name, p.URL, p.PID())
	}
	var gws []string
	for _, g := range cr.cl.gateways {
		gws = append(gws, g.Name)
	}
	fmt.Fprintf(w, "  balancer  %s → %s (health-checked every 200 ms)\n", cr.lb.url, strings.Join(gws, ", "))
	fmt.Fprintf(w, "  load: activity %d item %d, stock %d, payment timeout %v, pay %.0f%% / cancel %.0f%% / time out the rest; "+
		"%d buys at %d/s over %v, one user and Idempotency-Key each, resent on no answer/5xx/429\n",
		r.Act.ID, r.Act.ItemID, c.Load.Stock, c.Load.PayTimeout, 100*c.Load.PayShare, 100*c.Load.CancelShare,
		len(r.Src.Plan), c.Load.Rate, c.Load.Duration)
	fmt.Fprintf(w, "  probes: per fault an item of %d units bought at %d/s from %v before the fault (a third of winners cancel)\n",
		c.ProbeStock, c.ProbeRate, cr.probeLead())
	if cr.cl.redisCluster != nil {
		fmt.Fprintf(w, "  faults every %v from %v: kill -9 the master of the load item's Redis shard (its replica takes over), "+
			"restart it (rejoins as a replica), SIGSTOP the shard's new master until the cluster failed it over, then SIGCONT; "+
			"kill -9 the NATS node leading the orders stream (back after %v), kill -9 gateway-1 and worker-1 (back after %v), stop PostgreSQL (%v)\n",
			c.Gap, c.Warmup, c.NATSDown, c.RestartAfter, c.PGDown)
		return
	}
	fmt.Fprintf(w, "  faults every %v from %v: kill -9 gateway-1 (back after %v), kill -9 worker-1 (after %v), restart NATS (down %v), "+
		"kill -9 Redis (AOF tail of %v dropped), stop PostgreSQL (%v)\n",
		c.Gap, c.Warmup, c.RestartAfter, c.RestartAfter, c.NATSDown, c.RedisLose, c.PGDown)
}

// waitCatalogs waits until every gateway knows every activity of the run, so
// no buy of the first second is told 404 by a gateway whose catalog has not
// refreshed since the publish. The question is a buy of quantity 0: a
// gateway that knows the item refuses it (400) before touching Redis.
func (cr *chaosRun) waitCatalogs(ctx context.Context) error {
	tok, err := cr.auth.Mint("1", "", time.Minute)
	if err != nil {
		return err
	}
	for _, g := range cr.cl.gateways {
		for _, a := range cr.activities() {
			body := fmt.Sprintf(`{"activity_id":"%d","item_id":"%d","quantity":0}`, a.ID, a.ItemID)
			known := cluster.WaitUntil(ctx, 10*time.Second, func(ctx context.Context) bool {
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.URL+"/api/v1/seckill", strings.NewReader(body))
				if err != nil {
					return false
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := cr.client.Do(req)
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusBadRequest
			})
			if !known {
				return fmt.Errorf("%s does not know activity %d after 10s", g.Name, a.ID)
			}
		}
	}
	return nil
}
