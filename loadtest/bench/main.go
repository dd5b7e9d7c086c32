package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
)

type options struct {
	rate, backlog, pending int
	rounds                 int
	duration, warmup       time.Duration
	out, profile, readme   string
	redisAddr, pgDSN       string
	httpOnly               bool
	ablate                 bool
	cluster, shards        bool
	durability             string
	itemsPerShard          int
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		fs := flag.NewFlagSet("baseline", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:0", "listen address")
		redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis")
		prefix := fs.String("prefix", "bench", "key prefix")
		aid := fs.Int64("activity", 1, "activity id")
		iid := fs.Int64("item", 1, "item id")
		_ = fs.Parse(os.Args[2:])
		log.Fatal(runBaseline(*addr, *redisAddr, *prefix, *aid, *iid))
	}
	var o options
	flag.IntVar(&o.rate, "rate", 5000, "requests per second of each HTTP case")
	flag.DurationVar(&o.duration, "duration", 8*time.Second, "measured length of each HTTP case")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load at the same rate before each HTTP case")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of baseline then full buy path; the table shows the round with the median ratio")
	flag.IntVar(&o.backlog, "backlog", 100_000, "orders in the persister backlog")
	flag.IntVar(&o.pending, "pending", 100_000, "pending orders whose timeouts fire")
	flag.StringVar(&o.profile, "profile", "", "write the gateway's CPU profile (and FILE.allocs, its allocations) during the last full buy path round to this file")
	flag.BoolVar(&o.httpOnly, "http-only", false, "run only the three HTTP cases (for iterating on the gateway; the table then has no persister or timeout rows)")
	flag.BoolVar(&o.ablate, "ablate", false, "measure instead what each hand-written fast path saves: gateway CPU per buy with all on and with each off (SECKILL_ABLATE), rounds alternating; writes loadtest/out/ablate.md unless -out is given")
	flag.BoolVar(&o.cluster, "cluster", false, "measure instead the full buy path on a Redis Cluster the bench starts (3 masters, 1 replica each): per shard Redis CPU per buy and share of buys, and each -durability setting side by side; writes loadtest/out/bench-cluster.md unless -out is given")
	flag.BoolVar(&o.shards, "shards", false, "run -cluster's rounds on the Redis of -redis instead of a cluster of the bench's own (a single server is one shard; a cluster is named by its nodes, comma-separated)")
	flag.StringVar(&o.durability, "durability", "fence,replica", "with -cluster or -shards: the redis.durability settings to compare (SECKILL_REDIS_DURABILITY), comma-separated; \"default\" leaves it unset")
	flag.IntVar(&o.itemsPerShard, "items-per-shard", 4, "with -cluster or -shards: items of the activity on each shard")
	flag.StringVar(&o.out, "out", "loadtest/out/bench.md", "where the table is written (markdown)")
	flag.StringVar(&o.readme, "readme", "", "also replace the block between the bench markers in this README")
	flag.StringVar(&o.redisAddr, "redis", getenv("SECKILL_REDIS_ADDR", "127.0.0.1:6379"), "Redis")
	flag.StringVar(&o.pgDSN, "postgres", getenv("SECKILL_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL (an admin database; the bench creates its own)")
	flag.Parse()
	if o.ablate && !flagSet("out") {
		o.out = "loadtest/out/ablate.md"
	}
	if (o.cluster || o.shards) && !flagSet("out") {
		o.out = "loadtest/out/bench-cluster.md"
	}
	if o.cluster && flagSet("redis") {
		fmt.Fprintln(os.Stderr, "bench: -cluster starts its own Redis Cluster; use -shards to run on the one of -redis")
		os.Exit(2)
	}
	ctx := context.Background()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "seckill-bench-")
	if err != nil {
		return err
	}
	defer func() {
		// A failed run keeps the processes' logs the error points to.
		if err != nil {
			log.Printf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	}()
	log.Printf("building seckill and nats-server")
	defer cluster.RemoveBinaries()
	seckillBin, err := cluster.SeckillBinary(ctx)
	if err != nil {
		return err
	}
	natsBin, err := cluster.NATSServerBinary(ctx)
	if err != nil {
		return err
	}
	env, err := newEnv(ctx, dir, seckillBin, natsBin, o)
	if err != nil {
		return err
	}
	defer env.close()
	if o.cluster || o.shards {
		report, err := runShards(ctx, env, o)
		if err != nil {
			return err
		}
		if err := writeReport(o, report); err != nil {
			return err
		}
		if o.readme != "" {
			return updateReadme(o.readme, report, clusterStart, clusterEnd)
		}
		return nil
	}
	if env.topo.cluster {
		return fmt.Errorf("-redis names a Redis Cluster: the baseline and the other cases need a single server; -shards measures a cluster")
	}
	if o.ablate {
		report, err := runAblation(ctx, env, o)
		if err != nil {
			return err
		}
		return writeReport(o, report)
	}

	// Baseline and full path alternate, so drift on a shared machine
	// touches both; each round's ratio pairs the two runs next to each other.
	var pairs []roundResult
	for i := 0; i < max(o.rounds, 1); i++ {
		base, err := env.benchBaseline(ctx, o)
		if err != nil {
			return err
		}
		profile := ""
		if i == max(o.rounds, 1)-1 {
			profile = o.profile
		}
		full, err := env.benchBuy(ctx, o, profile)
		if err != nil {
			return err
		}
		pairs = append(pairs, roundResult{base, full})
		log.Printf("round %d: gateway CPU per request %.1f vs %.1f µs: %.2f×", i+1,
			full.cpuPerReq("gateway"), base.cpuPerReq("gateway"), pairs[i].ratio())
	}
	median := medianRound(pairs)
	results := []caseResult{median.base, median.full}
	soldOut, err := env.benchSoldOut(ctx, o)
	if err != nil {
		return err
	}
	results = append(results, soldOut)
	var persist persistResult
	var late lateResult
	if !o.httpOnly {
		if persist, err = env.benchPersister(ctx, o); err != nil {
			return err
		}
		if late, err = env.benchTimeouts(ctx, o); err != nil {
			return err
		}
	}
	report := render(o, pairs, results, env.gwIdle, persist, late)
	if err := writeReport(o, report); err != nil {
		return err
	}
	if o.readme != "" {
		if err := updateReadme(o.readme, report, benchStart, benchEnd); err != nil {
			return err
		}
		log.Printf("benchmark section of %s updated", o.readme)
	}
	return nil
}

// writeReport prints the report and writes it to o.out.
func writeReport(o options, report string) error {
	fmt.Println(report)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
			return err
		}
		log.Printf("table written to %s", o.out)
	}
	return nil
}

// flagSet reports whether the named flag was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// The README's markers around the tables of `make bench` and of
// `make bench-cluster`.
const (
	benchStart, benchEnd     = "<!-- bench:start -->", "<!-- bench:end -->"
	clusterStart, clusterEnd = "<!-- bench-cluster:start -->", "<!-- bench-cluster:end -->"
)

// updateReadme replaces what stands between the markers start and end.
func updateReadme(path, report, start, end string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s block", path, start, end)
	}
	s = s[:i+len(start)] + "\n" + report + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func itoa(n int) string { return strconv.Itoa(n) }
