// Command loadtest drives a running seckill gateway with vegeta and then
// proves the invariants (README, "Invariants") against the admin stats
// endpoint, PostgreSQL and Redis.
//
//	go run ./loadtest rush      --rate 2000 --duration 5s --stock 500
//	go run ./loadtest steady    --rate 500 --duration 10s
//	go run ./loadtest lifecycle --rate 200 --duration 5s --pay-timeout 3s
//	go run ./loadtest retry     --rate 1000 --duration 5s
//
// Each scenario creates and publishes an activity of its own, so runs never
// disturb each other's numbers. A live progress line goes to stderr every
// second; the report and the verification go to stdout and to
// <out>/report.txt, next to vegeta's results.bin and plot.html. The exit code
// is 0 when every check passed, 1 when one failed, 2 when the run could not
// be carried out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1 // an invariant or scenario check failed
	exitError = 2 // bad usage, or the run could not be carried out
)

// run parses the command line and runs one scenario; it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		usage(stderr)
		return exitError
	}
	name := args[0]
	if name == chaosName {
		return runChaos(ctx, args[1:], stdout, stderr)
	}
	if _, ok := scenarios[name]; !ok {
		fmt.Fprintf(stderr, "loadtest: unknown scenario %q\n", name)
		usage(stderr)
		return exitError
	}
	cfg, err := parseFlags(name, args[1:], stderr, env)
	if errors.Is(err, flag.ErrHelp) {
		return exitPass
	}
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return exitError
	}
	res, err := runScenario(ctx, cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest %s: %v\n", name, err)
		return exitError
	}
	if failed := res.failed(); len(failed) > 0 {
		fmt.Fprintf(stderr, "loadtest %s: FAILED: %s\n", name, strings.Join(failed, "; "))
		return exitFail
	}
	return exitPass
}

func usage(w io.Writer) {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	slices.Sort(names)
	fmt.Fprintf(w, "usage: go run ./loadtest <scenario> [flags]\n\nscenarios:\n")
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, scenarios[n].about())
	}
	fmt.Fprintf(w, "  %-10s %s\n", chaosName, chaosAbout)
	fmt.Fprintf(w, "\nrun `go run ./loadtest <scenario> -h` for the flags\n")
}

// parseFlags builds the Config of scenario from flags, then the environment,
// then the defaults; numbers left at zero take the scenario's defaults.
func parseFlags(scenario string, args []string, stderr io.Writer, env func(string) (string, bool)) (Config, error) {
	cfg := Config{Scenario: scenario}
	fs := flag.NewFlagSet("loadtest "+scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// Settings that may come from the environment default to "" here and
	// are resolved after parsing, so -h never prints a secret from the env.
	fromEnv := []struct {
		dst       *string
		flag, env string
		def, help string
	}{
		{&cfg.BaseURL, "base-url", "SECKILL_LOADTEST_BASE_URL", "http://127.0.0.1:8080", "gateway URL, loopback only"},
		{&cfg.AuthSecret, "auth-secret", "SECKILL_AUTH_SECRET", devSecret, "JWT secret the gateway verifies with"},
		{&cfg.PaymentSecret, "payment-secret", "SECKILL_PAYMENT_SECRET", devSecret, "payment callback HMAC secret"},
		{&cfg.PostgresDSN, "postgres-dsn", "SECKILL_POSTGRES_DSN", "postgres://postgres@127.0.0.1:5432/seckill?sslmode=disable", "the gateway's database, read to verify"},
		{&cfg.RedisAddr, "redis-addr", "SECKILL_REDIS_ADDR", "127.0.0.1:6379", "the gateway's Redis, read to verify"},
		{&cfg.RedisPrefix, "redis-prefix", "SECKILL_REDIS_KEY_PREFIX", "sk", "the gateway's Redis key prefix"},
	}
	for _, e := range fromEnv {
		def := e.def
		if e.def == devSecret {
			def = "the dev secret of configs/seckill.yaml"
		}
		fs.StringVar(e.dst, e.flag, "", fmt.Sprintf("%s (default $%s, else %s)", e.help, e.env, def))
	}
	fs.IntVar(&cfg.Rate, "rate", 0, "planned requests per second; retries and follow-ups come on top (0: scenario default)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "how long planned requests are sent (0: scenario default)")
	fs.IntVar(&cfg.Users, "users", 0, "distinct buyers (0: one per planned request; retry: rate×duration/2.5 logical buyers)")
	fs.Int64Var(&cfg.Stock, "stock", 0, "units of the item (0: scenario default)")
	fs.Int64Var(&cfg.Limit, "limit", 0, "per-user limit of the activity (0: 1; retry: 2, so only the Idempotency-Key stops a second order)")
	fs.DurationVar(&cfg.PayTimeout, "pay-timeout", 0, "payment window of the activity, whole seconds (0: 900s; lifecycle: 3s)")
	fs.Float64Var(&cfg.PayShare, "pay-share", 0.4, "lifecycle: share of accepted orders paid by signed callback")
	fs.Float64Var(&cfg.CancelShare, "cancel-share", 0.3, "lifecycle: share of accepted orders cancelled by their buyer; the rest time out")
	fs.Float64Var(&cfg.AbandonShare, "abandon-share", 0.1, "retry: share of first sends whose client stops waiting early (a lost response)")
	fs.DurationVar(&cfg.AbandonAfter, "abandon-after", time.Millisecond, "retry: an abandoning client gives up after a random time up to this")
	fs.DurationVar(&cfg.Timeout, "timeout", 5*time.Second, "client timeout per request")
	fs.IntVar(&cfg.MaxInFlight, "max-in-flight", 1000, "concurrent requests at most (vegeta workers)")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", 30*time.Second, "how long to wait for the pipeline to drain before verifying")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the scenarios' random choices")
	fs.StringVar(&cfg.Out, "out", "", "output folder (default loadtest/out/<scenario>-<timestamp>)")
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, e := range fromEnv {
		if *e.dst == "" {
			*e.dst = e.def
			if v, ok := env(e.env); ok && v != "" {
				*e.dst = v
			}
		}
	}
	if cfg.Out == "" {
		cfg.Out = defaultOut(scenario, time.Now())
	}
	return prepare(cfg)
}
