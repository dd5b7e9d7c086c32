package main

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

// scenario is one load pattern: it plans the requests, reacts to their
// answers during the attack (retries, payments, cancels), and adds its own
// checks to the shared invariants.
type scenario interface {
	// about is the one-line description of the usage text.
	about() string
	// defaults fills the settings left at zero.
	defaults(c *Config)
	// plan returns the attempts to send at the rate, in order.
	plan(r *session) []*attempt
	// react returns the attempts an answer causes (a retry, a follow-up).
	// It runs on the one goroutine that consumes results.
	react(r *session, a *attempt, now time.Time) []*attempt
	// tail is how long after --duration the attack may go on for the work
	// react schedules.
	tail(c Config) time.Duration
	// settled tells whether the item's stats show the pipeline drained.
	settled(r *session, st itemStats) bool
	// checks are the scenario's own verdicts, after the shared invariants.
	checks(r *session, f *facts) []check
}

// scenarios are the runnable scenarios by command-line name.
var scenarios = map[string]scenario{
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
	sc.defaults(&cfg)
	return cfg, cfg.validate()
}

// commonDefaults fills what every scenario defaults the same way.
func commonDefaults(c *Config) {
	if c.Users == 0 {
		c.Users = max(1, plannedRequests(*c)) // a fresh user per request
	}
	if c.Limit == 0 {
		c.Limit = 1
	}
	if c.PayTimeout == 0 {
		c.PayTimeout = 900 * time.Second // the README's example: nothing times out during a run
	}
}

func plannedRequests(c Config) int { return int(float64(c.Rate) * c.Duration.Seconds()) }

// session is one scenario run: its settings, its activity, its buyers and the
// state the attack builds up.
type session struct {
	cfg    Config
	sc     scenario
	stdout io.Writer // the report (also written to <out>/report.txt)
	stderr io.Writer // the progress line

	api      *api
	signer   *gateway.Signer
	act      activity
	userBase int64    // user id of buyer 0
	tokens   []string // bearer token per buyer
	src      *source
	rng      *rand.Rand // plan and react only: never used concurrently

	// Filled by observe as answers arrive.
	accepted   map[int64]int // order id → buyer, from every 202
	lastAccept time.Time
}

// userID is buyer b's user id. Every activity gets its own range, so runs
// against one gateway never share a user (Sentinel's per-user limit is
// global to the gateway).
func (r *session) userID(b int) int64 { return r.userBase + int64(b) }

// observe records what every scenario needs to know about an answer.
func (r *session) observe(a *attempt, now time.Time) {
	if a.kind == opBuy && a.status == 202 && a.gotOrder != 0 {
		if _, seen := r.accepted[a.gotOrder]; !seen {
			r.accepted[a.gotOrder] = a.buyer
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
	Checks []check
	// Out is the folder holding results.bin, plot.html and report.txt.
	Out string
}

// failed names the checks that failed.
func (res *Result) failed() []string {
	var out []string
	for _, c := range res.Checks {
		if !c.pass {
			out = append(out, c.id+" "+c.name)
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
	ttl := cfg.Duration + sc.tail(cfg) + cfg.DrainTimeout + cfg.PayTimeout + 10*time.Minute
	adminToken, err := auth.Mint("loadtest-admin", gateway.RoleAdmin, ttl)
	if err != nil {
		return nil, fmt.Errorf("mint admin token: %w", err)
	}
	r := &session{
		cfg: cfg, sc: sc, stdout: io.MultiWriter(stdout, reportFile), stderr: stderr,
		api:      newAPI(cfg.BaseURL, adminToken),
		signer:   gateway.NewSigner(cfg.PaymentSecret),
		rng:      rand.New(rand.NewPCG(cfg.Seed, 0x5ec)),
		accepted: map[int64]int{},
	}
	r.act, err = r.api.createAndPublish(ctx, activitySpec{
		Name: "loadtest " + cfg.Scenario + " " + time.Now().UTC().Format(time.RFC3339),
		// The window must outlast the attack; an hour is beyond any bounded run.
		Open:       time.Hour + cfg.Duration + sc.tail(cfg),
		PayTimeout: cfg.PayTimeout, Limit: cfg.Limit, Stock: cfg.Stock, PriceCents: 1999,
	})
	if err != nil {
		return nil, err
	}
	r.userBase = r.act.ID * 10_000_000
	r.tokens = make([]string, cfg.Users)
	for b := range r.tokens {
		if r.tokens[b], err = auth.Mint(strconv.FormatInt(r.userID(b), 10), "", ttl); err != nil {
			return nil, fmt.Errorf("mint user token: %w", err)
		}
	}
	buyBody := fmt.Appendf(nil, `{"activity_id":"%d","item_id":"%d","quantity":1}`, r.act.ID, r.act.ItemID)
	r.src = newSource(cfg.Rate, cfg.BaseURL, func(b int) string { return r.tokens[b] }, r.signer.Sign, buyBody)
	r.src.addPlanned(sc.plan(r)...)

	fmt.Fprintf(r.stdout, "seckill load test: %s\n", cfg.Scenario)
	fmt.Fprintf(r.stdout, "  target %s, activity %d item %d: stock %d, per-user limit %d, payment timeout %v\n",
		cfg.BaseURL, r.act.ID, r.act.ItemID, cfg.Stock, cfg.Limit, cfg.PayTimeout)
	fmt.Fprintf(r.stdout, "  %d planned requests at %d/s over %v, %d users (ids %d..%d)\n",
		len(r.src.plan), cfg.Rate, cfg.Duration, cfg.Users, r.userID(0), r.userID(cfg.Users-1))

	out, err := r.attack(ctx, cfg.Duration+sc.tail(cfg))
	if err != nil {
		return nil, err
	}
	r.report(out)

	st, drainNote, err := r.drain(ctx)
	if err != nil {
		return nil, err
	}
	f, err := r.gather(ctx, st)
	if err != nil {
		return nil, err
	}
	f.drainNote = drainNote
	checks := append(r.invariants(f), sc.checks(r, f)...)
	r.printChecks(f, checks)
	return &Result{
		Scenario: cfg.Scenario, Activity: r.act.ID, Item: r.act.ItemID,
		Accepted: len(r.accepted), Requests: out.requests(), Checks: checks, Out: cfg.Out,
	}, nil
}

// planOnePerRequest plans rate×duration buys, buyer i%users each: with the
// default --users every request is a user of its own.
func planOnePerRequest(r *session) []*attempt {
	n := plannedRequests(r.cfg)
	out := make([]*attempt, n)
	for i := range out {
		out[i] = &attempt{kind: opBuy, buyer: i % r.cfg.Users}
	}
	return out
}

// drainedOrders is the usual settled test: nothing reserved or being
// returned, and at least every accepted unit is a row (more when a request
// whose answer was lost took an order; the verification accounts for those).
func drainedOrders(r *session, st itemStats) bool {
	return st.Reserved == 0 && st.Returning == 0 &&
		st.Pending+st.Paid+st.Cancelled >= int64(len(r.accepted))
}
