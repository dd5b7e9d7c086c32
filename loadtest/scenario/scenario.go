package scenario

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/seckill/seckill/gateway"
)

// Scenario is one load pattern: it plans the requests, reacts to their
// answers during the attack (retries, payments, cancels), and adds its own
// checks to the shared invariants.
type Scenario interface {
	// About is the one-line description of the usage text.
	About() string
	// Defaults fills the settings left at zero.
	Defaults(c *Config)
	// Plan returns the attempts to send at the rate, in order.
	Plan(r *Session) []*Attempt
	// React returns the attempts an answer causes (a retry, a follow-up).
	// It runs on the one goroutine that consumes results.
	React(r *Session, a *Attempt, now time.Time) []*Attempt
	// Tail is how long after --duration the attack may go on for the work
	// React schedules.
	Tail(c Config) time.Duration
	// Settled tells whether the item's stats show the pipeline drained.
	Settled(r *Session, st ItemStats) bool
	// Checks are the scenario's own verdicts, after the shared invariants.
	Checks(r *Session, f *Facts) []Check
}

// scenarios are the runnable scenarios by command-line name.
var scenarios = map[string]Scenario{
	"rush":      rush{},
	"steady":    steady{},
	"lifecycle": lifecycle{},
	"retry":     retry{},
}

// prepare fills the scenario's defaults into cfg and validates it.
func prepare(cfg Config) (Config, error) {
	sc, ok := scenarios[cfg.Scenario]
	if !ok {
		return Config{}, fmt.Errorf("unknown scenario %q", cfg.Scenario)
	}
	sc.Defaults(&cfg)
	return cfg, cfg.Validate()
}

// commonDefaults fills what every scenario defaults the same way.
func commonDefaults(c *Config) {
	if c.Users == 0 {
		c.Users = max(1, PlannedRequests(*c)) // a fresh user per request
	}
	if c.Limit == 0 {
		c.Limit = 1
	}
	if c.PayTimeout == 0 {
		c.PayTimeout = 900 * time.Second // the README's example: nothing times out during a run
	}
}

// PlannedRequests is how many requests the rate sends over the duration.
func PlannedRequests(c Config) int { return int(float64(c.Rate) * c.Duration.Seconds()) }

// Session is one scenario run: its settings, its activity, its buyers and the
// state the attack builds up.
type Session struct {
	Config   Config
	Scenario Scenario
	Stdout   io.Writer // the report (also written to <out>/report.txt)
	Stderr   io.Writer // the progress line

	API      *AdminClient
	Signer   *gateway.Signer
	Act      Activity
	UserBase int64    // user id of buyer 0
	Tokens   []string // bearer token per buyer
	Src      *source
	RNG      *rand.Rand // plan and react only: never used concurrently

	// Filled by observe as answers arrive.
	Accepted   map[int64]int // order id → buyer, from every 202
	lastAccept time.Time
}

// UserID is buyer b's user id. Every activity gets its own range, so runs
// against one gateway never share a user (Sentinel's per-user limit is
// global to the gateway).
func (r *Session) UserID(b int) int64 { return r.UserBase + int64(b) }

// observe records what every scenario needs to know about an answer.
func (r *Session) observe(a *Attempt, now time.Time) {
	if a.Kind == OpBuy && a.Status == 202 && a.GotOrder != 0 {
		if _, seen := r.Accepted[a.GotOrder]; !seen {
			r.Accepted[a.GotOrder] = a.Buyer
			r.lastAccept = now
		}
	}
}

// Result is the outcome of a run.
type Result struct {
	// Scenario is the scenario's name.
	Scenario string
	// Activity and Item are the ids the run created and sold.
	Activity, Item int64
	// Accepted is the number of distinct order ids answered 202.
	Accepted int
	// Requests is the number of requests sent (results in results.bin).
	Requests int
	// Checks are the verdicts, invariants first; any failed one fails the run.
	Checks []Check
	// Out is the folder holding results.bin, plot.html and report.txt.
	Out string
}

// Failed names the checks that failed.
func (res *Result) Failed() []string {
	var out []string
	for _, c := range res.Checks {
		if !c.Pass {
			out = append(out, c.ID+" "+c.Name)
		}
	}
	return out
}

// runScenario runs cfg (prepared) against the gateway: create and publish
// the activity, attack, report, drain, verify. An error means the run could
// not be carried out; failed checks are in the Result.
func runScenario(ctx context.Context, cfg Config, stdout, stderr io.Writer) (*Result, error) {
	sc, ok := scenarios[cfg.Scenario]
	if !ok {
		return nil, fmt.Errorf("unknown scenario %q", cfg.Scenario)
	}
	if err := os.MkdirAll(cfg.Out, 0o755); err != nil {
		return nil, fmt.Errorf("output folder: %w", err)
	}
	reportFile, err := os.Create(filepath.Join(cfg.Out, "report.txt"))
	if err != nil {
		return nil, fmt.Errorf("report file: %w", err)
	}
	defer reportFile.Close()

	auth := gateway.NewAuth(cfg.AuthSecret)
	// Tokens outlive the whole run, drain and payment window included.
	ttl := cfg.Duration + sc.Tail(cfg) + cfg.DrainTimeout + cfg.PayTimeout + 10*time.Minute
	adminToken, err := auth.Mint("loadtest-admin", gateway.RoleAdmin, ttl)
	if err != nil {
		return nil, fmt.Errorf("mint admin token: %w", err)
	}
	r := &Session{
		Config: cfg, Scenario: sc, Stdout: io.MultiWriter(stdout, reportFile), Stderr: stderr,
		API:      NewAPI(cfg.BaseURL, adminToken),
		Signer:   gateway.NewSigner(cfg.PaymentSecret),
		RNG:      rand.New(rand.NewPCG(cfg.Seed, 0x5ec)),
		Accepted: map[int64]int{},
	}
	r.Act, err = r.API.CreateAndPublish(ctx, ActivitySpec{
		Name: "loadtest " + cfg.Scenario + " " + time.Now().UTC().Format(time.RFC3339),
		// The window must outlast the attack; an hour is beyond any bounded run.
		Open:       time.Hour + cfg.Duration + sc.Tail(cfg),
		PayTimeout: cfg.PayTimeout, Limit: cfg.Limit, Stock: cfg.Stock, PriceCents: 1999,
	})
	if err != nil {
		return nil, err
	}
	r.UserBase = r.Act.ID * 10_000_000
	r.Tokens = make([]string, cfg.Users)
	for b := range r.Tokens {
		if r.Tokens[b], err = auth.Mint(strconv.FormatInt(r.UserID(b), 10), "", ttl); err != nil {
			return nil, fmt.Errorf("mint user token: %w", err)
		}
	}
	buyBody := fmt.Appendf(nil, `{"activity_id":"%d","item_id":"%d","quantity":1}`, r.Act.ID, r.Act.ItemID)
	r.Src = NewSource(cfg.Rate, cfg.BaseURL, func(b int) string { return r.Tokens[b] }, r.Signer.Sign, buyBody)
	r.Src.AddPlanned(sc.Plan(r)...)

	fmt.Fprintf(r.Stdout, "seckill load test: %s\n", cfg.Scenario)
	fmt.Fprintf(r.Stdout, "  target %s, activity %d item %d: stock %d, per-user limit %d, payment timeout %v\n",
		cfg.BaseURL, r.Act.ID, r.Act.ItemID, cfg.Stock, cfg.Limit, cfg.PayTimeout)
	fmt.Fprintf(r.Stdout, "  %d planned requests at %d/s over %v, %d users (ids %d..%d)\n",
		len(r.Src.Plan), cfg.Rate, cfg.Duration, cfg.Users, r.UserID(0), r.UserID(cfg.Users-1))

	out, err := r.Attack(ctx, cfg.Duration+sc.Tail(cfg))
	if err != nil {
		return nil, err
	}
	r.Report(out)

	st, drainNote, err := r.Drain(ctx)
	if err != nil {
		return nil, err
	}
	f, err := r.Gather(ctx, st)
	if err != nil {
		return nil, err
	}
	f.DrainNote = drainNote
	checks := append(r.Invariants(f), sc.Checks(r, f)...)
	r.PrintChecks(f, checks)
	return &Result{
		Scenario: cfg.Scenario, Activity: r.Act.ID, Item: r.Act.ItemID,
		Accepted: len(r.Accepted), Requests: out.Requests(), Checks: checks, Out: cfg.Out,
	}, nil
}

// PlanOnePerRequest plans rate×duration buys, buyer i%users each: with the
// default --users every request is a user of its own.
func PlanOnePerRequest(r *Session) []*Attempt {
	n := PlannedRequests(r.Config)
	out := make([]*Attempt, n)
	for i := range out {
		out[i] = &Attempt{Kind: OpBuy, Buyer: i % r.Config.Users}
	}
	return out
}

// DrainedOrders is the usual settled test: nothing reserved or being
// returned, and at least every accepted unit is a row (more when a request
// whose answer was lost took an order; the verification accounts for those).
func DrainedOrders(r *Session, st ItemStats) bool {
	return st.Reserved == 0 && st.Returning == 0 &&
		st.Pending+st.Paid+st.Cancelled >= int64(len(r.Accepted))
}
