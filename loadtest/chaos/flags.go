package chaos

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/seckill/seckill/loadtest/scenario"
)

// Name is the command-line name of the chaos run. It is not in the
// scenarios map: it starts its own processes rather than drive a running
// gateway, so it has its own flags and entry point (Main).
const Name = "chaos"

// About is its line in the usage text.
const About = "own Redis/NATS/PostgreSQL + gateways + workers (-topology single|cluster); kill -9/restart each under load, verify I1-I7"

// The topologies a chaos run can start (-topology).
const (
	topologySingle  = "single"  // one redis-server, one nats-server, 2 gateways, 2 workers
	topologyCluster = "cluster" // Redis Cluster 3+3, NATS ×3 (R3), 3 gateways, 2 workers
)

// chaosConfig is one chaos run: the load (a Config like every scenario's)
// and the fault schedule.
type chaosConfig struct {
	Load     scenario.Config
	Topology string // topologySingle or topologyCluster

	Warmup       time.Duration // load before the first fault
	Gap          time.Duration // from one fault to the next
	RestartAfter time.Duration // a killed gateway or worker is started again after this
	NATSDown     time.Duration // NATS stays stopped this long
	PGDown       time.Duration // PostgreSQL stays stopped this long
	RedisLose    time.Duration // AOF tail dropped after the Redis kill -9 (0: a plain kill -9)
	Window       time.Duration // the ± window of the table around each fault
	EndSlack     time.Duration // load after the last fault's part is back

	ProbeStock int64 // units of each fault's sell-out probe item
	ProbeRate  int   // probe buys per second

	SweepInterval, SweepGrace time.Duration // the workers' settings, for I7
	Keep                      bool          // keep the temp folder (data dirs, binaries)
}

// faultAt is when fault i (0-based) is due, from the start of the load.
func (c *chaosConfig) faultAt(i int) time.Duration { return c.Warmup + time.Duration(i)*c.Gap }

// loadDuration covers the faults, PostgreSQL's outage (the last) and the slack.
func (c *chaosConfig) loadDuration() time.Duration {
	return c.faultAt(len(c.kinds())-1) + c.PGDown + c.EndSlack
}

// kinds is the topology's fault sequence.
func (c *chaosConfig) kinds() []faultKind {
	if c.Topology == topologyCluster {
		return clusterFaultKinds
	}
	return singleFaultKinds
}

// gateways and workers is how many of each the topology runs.
func (c *chaosConfig) gateways() int {
	if c.Topology == topologyCluster {
		return 3
	}
	return 2
}

func (c *chaosConfig) workers() int { return 2 }

// chaosDefaults are the full run (`make chaos`) and the short one (--short,
// the test): everything compressed, a lower rate. The cluster topology has
// seven faults and a Redis failover takes a few seconds (cluster-node-timeout
// 2 s, then the election), so its gaps are longer.
func chaosDefaults(short bool, topology string) chaosConfig {
	c := chaosConfig{Topology: topology,
		Load: scenario.Config{
			Scenario: Name, Rate: 400, PayTimeout: 15 * time.Second, PayShare: 0.4, CancelShare: 0.3,
			AbandonShare: 0, AbandonAfter: time.Millisecond, Limit: 1,
			Timeout: 5 * time.Second, MaxInFlight: 1000, DrainTimeout: 60 * time.Second, Seed: 1,
			AuthSecret: chaosSecret, PaymentSecret: chaosSecret, RedisPrefix: "sk",
		},
		Warmup: 6 * time.Second, Gap: 11 * time.Second, RestartAfter: 3 * time.Second,
		NATSDown: 3 * time.Second, PGDown: 10 * time.Second, RedisLose: time.Second,
		Window: 5 * time.Second, EndSlack: 4 * time.Second,
		ProbeStock: 100, ProbeRate: 50,
		SweepInterval: 2 * time.Second, SweepGrace: time.Second,
	}
	if short {
		c.Load.Rate, c.Load.PayTimeout, c.Load.DrainTimeout = 120, 4*time.Second, 40*time.Second
		c.Warmup, c.Gap, c.RestartAfter, c.NATSDown = 2*time.Second, 3500*time.Millisecond, time.Second, time.Second
		c.PGDown, c.Window, c.EndSlack, c.ProbeStock, c.ProbeRate = 2500*time.Millisecond, 1500*time.Millisecond, 1500*time.Millisecond, 40, 40
	}
	if topology == topologyCluster {
		c.Gap = 12 * time.Second
		if short {
			// A buy answered 503 (STOCK_UNCONFIRMED while a shard has no
			// replica, or NATS down) may still hold its reservation; the
			// reconciler persists it after its grace (3 s) and interval (2 s).
			// Its payment window must outlast that, or its timer is late
			// before its row exists.
			c.Warmup, c.Gap, c.Load.PayTimeout = 3*time.Second, 8*time.Second, 8*time.Second
		}
	}
	return c
}

// parseChaosFlags reads the chaos run's flags; --short picks the short
// defaults, other flags override either.
func parseChaosFlags(args []string, stderr io.Writer) (chaosConfig, error) {
	short, topology := false, topologySingle
	for i, a := range args {
		if a == "--short" || a == "-short" || a == "--short=true" || a == "-short=true" {
			short = true
		}
		if v, ok := strings.CutPrefix(strings.TrimLeft(a, "-"), "topology="); ok && strings.HasPrefix(a, "-") {
			topology = v
		} else if (a == "-topology" || a == "--topology") && i+1 < len(args) {
			topology = args[i+1]
		}
	}
	c := chaosDefaults(short, topology)
	fs := flag.NewFlagSet("loadtest chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Bool("short", false, "compressed run (single: 20 s of load, faults 3.5 s apart; cluster: faults 8 s apart; lower rate): the go test's run")
	fs.StringVar(&c.Topology, "topology", c.Topology, "single: one Redis, one NATS, 2 gateways, 2 workers; "+
		"cluster: Redis Cluster 3 masters + 3 replicas, 3 NATS nodes (streams R3), 3 gateways, 2 workers")
	fs.IntVar(&c.Load.Rate, "rate", c.Load.Rate, "planned buys per second over all gateways; retries and follow-ups come on top")
	fs.Int64Var(&c.Load.Stock, "stock", 0, "units of the load's item (0: 10% more than planned buys, so sales go on through every fault)")
	fs.DurationVar(&c.Load.PayTimeout, "pay-timeout", c.Load.PayTimeout, "payment window of the activities, whole seconds")
	fs.Float64Var(&c.Load.PayShare, "pay-share", c.Load.PayShare, "share of accepted orders paid by signed callback")
	fs.Float64Var(&c.Load.CancelShare, "cancel-share", c.Load.CancelShare, "share of accepted orders cancelled by their buyer; the rest time out")
	fs.DurationVar(&c.Load.Timeout, "timeout", c.Load.Timeout, "client timeout per request")
	fs.IntVar(&c.Load.MaxInFlight, "max-in-flight", c.Load.MaxInFlight, "concurrent requests at most")
	fs.DurationVar(&c.Load.DrainTimeout, "drain-timeout", c.Load.DrainTimeout, "how long to wait for the pipeline to drain before verifying")
	fs.Uint64Var(&c.Load.Seed, "seed", c.Load.Seed, "seed of the random choices")
	fs.StringVar(&c.Load.Out, "out", "", "output folder (default loadtest/out/chaos-<timestamp>)")
	fs.DurationVar(&c.Warmup, "warmup", c.Warmup, "load before the first fault")
	fs.DurationVar(&c.Gap, "gap", c.Gap, "time from one fault to the next")
	fs.DurationVar(&c.RestartAfter, "restart-after", c.RestartAfter, "a killed gateway or worker is started again after this")
	fs.DurationVar(&c.NATSDown, "nats-down", c.NATSDown, "how long NATS stays stopped")
	fs.DurationVar(&c.PGDown, "pg-down", c.PGDown, "how long PostgreSQL stays stopped")
	fs.DurationVar(&c.RedisLose, "redis-lose", c.RedisLose, "after the Redis kill -9, drop the AOF tail written in this last stretch "+
		"(a host crash under appendfsync everysec; 0: plain kill -9, which keeps it in the page cache)")
	fs.DurationVar(&c.Window, "window", c.Window, "the ± window around each fault in the table")
	fs.Int64Var(&c.ProbeStock, "probe-stock", c.ProbeStock, "units of each fault's sell-out probe item")
	fs.IntVar(&c.ProbeRate, "probe-rate", c.ProbeRate, "probe buys per second around each fault")
	fs.BoolVar(&c.Keep, "keep", false, "keep the temp folder with the data directories")
	if err := fs.Parse(args); err != nil {
		return chaosConfig{}, err
	}
	if fs.NArg() > 0 {
		return chaosConfig{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.Load.Out == "" {
		c.Load.Out = scenario.DefaultOut(Name, time.Now())
	}
	c.Load.Duration = c.loadDuration()
	c.Load.Users = scenario.PlannedRequests(c.Load)
	if c.Load.Stock == 0 {
		c.Load.Stock = int64(c.Load.Users) * 11 / 10
	}
	return c, c.validate()
}

// validate checks the schedule and, through Config.validate, the load.
func (c *chaosConfig) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Topology != topologySingle && c.Topology != topologyCluster {
		bad("--topology must be %s or %s", topologySingle, topologyCluster)
	}
	if c.Warmup < time.Second || c.Gap < 2*time.Second {
		bad("--warmup must be ≥ 1s and --gap ≥ 2s")
	}
	if c.RestartAfter <= 0 || c.NATSDown <= 0 || c.PGDown <= 0 || c.RedisLose < 0 || c.Window <= 0 {
		bad("--restart-after, --nats-down, --pg-down and --window must be positive, --redis-lose ≥ 0")
	}
	if c.RestartAfter >= c.Gap || c.NATSDown >= c.Gap {
		bad("--restart-after and --nats-down must be shorter than --gap")
	}
	if c.ProbeStock < 1 || c.ProbeRate < 1 {
		bad("--probe-stock and --probe-rate must be at least 1")
	}
	if total := c.Load.Duration + c.Load.PayTimeout + c.Load.DrainTimeout; total > 10*time.Minute {
		bad("the run would take %v; keep it under 10 minutes", total)
	}
	// The load's own settings; the base URL is the balancer's, known later.
	load := c.Load
	load.BaseURL = "http://127.0.0.1:1"
	if err := load.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Main is `go run ./loadtest chaos [flags]`; it returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, err := parseChaosFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return scenario.ExitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest chaos: %v\n", err)
		return scenario.ExitError
	}
	res, err := runChaosRun(ctx, cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest chaos: %v\n", err)
		return scenario.ExitError
	}
	if failed := res.Failed(); len(failed) > 0 {
		fmt.Fprintf(stderr, "loadtest chaos: FAILED: %s\n", strings.Join(failed, "; "))
		return scenario.ExitFail
	}
	return scenario.ExitPass
}

// chaosTmp makes the run's temp folder (binaries, data directories).
func chaosTmp() (string, error) { return os.MkdirTemp("", "seckill-chaos-") }
