package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type options struct {
	rate, backlog, pending int
	rounds                 int
	duration, warmup       time.Duration
	out, profile, readme   string
	redisAddr, pgDSN       string
	httpOnly               bool
	ablate                 bool
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
	flag.StringVar(&o.out, "out", "loadtest/out/bench.md", "where the table is written (markdown)")
	flag.StringVar(&o.readme, "readme", "", "also replace the block between the bench markers in this README")
	flag.StringVar(&o.redisAddr, "redis", getenv("SECKILL_REDIS_ADDR", "127.0.0.1:6379"), "Redis")
	flag.StringVar(&o.pgDSN, "postgres", getenv("SECKILL_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"), "PostgreSQL (an admin database; the bench creates its own)")
	flag.Parse()
	if o.ablate && !flagSet("out") {
		o.out = "loadtest/out/ablate.md"
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

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "seckill-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	log.Printf("building seckill and nats-server into %s", dir)
	for _, b := range [][]string{
		{"-o", filepath.Join(dir, "seckill"), "./cmd/seckill"},
		{"-o", filepath.Join(dir, "nats-server"), "github.com/nats-io/nats-server/v2"},
	} {
		cmd := exec.Command("go", append([]string{"build"}, b...)...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %v: %w", b, err)
		}
	}
	env, err := newEnv(ctx, dir, o)
	if err != nil {
		return err
	}
	defer env.close()
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
		if err := updateReadme(o.readme, report); err != nil {
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

const benchStart, benchEnd = "<!-- bench:start -->", "<!-- bench:end -->"

// updateReadme replaces what stands between the bench markers.
func updateReadme(path, report string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	i, j := strings.Index(s, benchStart), strings.Index(s, benchEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %s … %s block", path, benchStart, benchEnd)
	}
	s = s[:i+len(benchStart)] + "\n" + report + "\n" + s[j:]
	return os.WriteFile(path, []byte(s), 0o644)
}

func itoa(n int) string { return strconv.Itoa(n) }
