package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/gateway/api"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/ordertest"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// sentinelLogDir is Sentinel's log folder: its state is per process, so
// one folder for the whole test binary (never ~/logs/csp).
var sentinelLogDir = os.TempDir() + "/seckill-sentinel-test"

const testSecret = "test-secret-0123456789abcdefghijklmnop"

// harness is one gateway (and the worker parts, run on demand) over the
// test's own PostgreSQL schema, Redis prefix and embedded NATS.
type harness struct {
	t          *testing.T
	srv        *httptest.Server
	pool       *pgxpool.Pool
	rdb        redis.UniversalClient
	keys       stock.Keys
	stock      *stock.Store
	store      *order.Store
	broker     *order.Broker
	worker     *worker.Worker // built as cmd builds it, never started: tests call RunOnce
	persister  *worker.Persister
	reconciler *worker.Reconciler
	canceller  *order.Canceller
	timeouts   *worker.Timeouts
	sweeper    *worker.Sweeper
	recovery   *worker.Recovery
	signer     *gateway.Signer
	node       *stock.NodeLease
	auth       *gateway.Auth
	hooks      *harnessHooks
	soldOut    *stock.SoldOut
	sem        *stock.Semaphore
	reg        *prometheus.Registry
	stopPoll   func()
	admin      string // admin bearer token
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// setupOpts changes a harness.
type setupOpts struct {
	// noSchedules runs the timers in their fallback (delayed redelivery).
	noSchedules bool
	// broker, when set, replaces the embedded test broker.
	broker *order.Broker
	// rdb, when set, replaces the shared test Redis (key prefix "sk").
	rdb redis.UniversalClient
	// registry, when set, is the store's (the one rdb's stock.ShardHook reads).
	registry *stock.Registry
	// flow, when set, replaces the permissive Sentinel rules.
	flow *gateway.FlowConfig
	// redisHook, when set, is added to the test's own Redis client (fault
	// injection: a slow or failing Redis for chosen calls).
	redisHook redis.Hook
}

// harnessHooks lets tests stop the buy path at chosen points.
type harnessHooks struct {
	// BeforePublish runs after the buy script reserved stock and before the
	// order is published; an error aborts that order there, as if the
	// gateway died at that moment. It runs in the round trip's sender.
	BeforePublish func(ctx context.Context, r stock.Reservation) error
}

func setup(t *testing.T) *harness { t.Helper(); return setupWith(t, setupOpts{}) }

func setupWith(t *testing.T, opts setupOpts) *harness {
	t.Helper()
	ctx := context.Background()
	log := testLogger(t)
	h := &harness{t: t, hooks: &harnessHooks{}}
	h.pool = ordertest.NewPool(t)
	if opts.rdb != nil {
		h.rdb, h.keys = opts.rdb, stock.Keys{Prefix: "sk"}
	} else {
		h.rdb, h.keys = stocktest.New(t)
		if opts.redisHook != nil {
			h.rdb.AddHook(opts.redisHook)
		}
	}
	h.broker = opts.broker
	if h.broker == nil {
		h.broker = ordertest.NewBroker(t)
	}
	var storeOpts []stock.StoreOption
	if opts.registry != nil {
		storeOpts = append(storeOpts, stock.WithRegistry(opts.registry))
	}
	h.stock = stock.NewStore(h.rdb, h.keys, storeOpts...)
	h.store = order.NewStore(h.pool)
	h.auth = gateway.NewAuth(testSecret)

	holder := fmt.Sprintf("test-%s-%d", t.Name(), time.Now().UnixNano())
	// Renewed in the background by runLeases, as serve renews it.
	node, err := stock.AcquireNode(ctx, h.rdb, h.keys, holder, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.node = node
	sem := stock.NewSemaphore(h.rdb, h.keys, stock.SemaphoreConfig{
		Name: "buy", Capacity: 512, Block: 32, TTL: 5 * time.Second, Holder: holder,
	})
	t.Cleanup(func() { _ = sem.Close(context.Background()); _ = node.Release(context.Background()) })
	h.sem = sem // its lease and the node's are renewed by startPoller, as serve renews them
	h.signer = gateway.NewSigner(testSecret + "-payments")
	h.canceller = order.NewCanceller(log, h.store, h.stock)
	flow := gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6, UserQPS: 100_000,
		BreakerErrors: 1e6, BreakerWindowMs: 1000, BreakerRetryMs: 1000}
	if opts.flow != nil {
		flow = *opts.flow
	}
	reg := prometheus.NewRegistry()
	h.reg = reg
	catalog := order.NewCatalog(h.store, 50*time.Millisecond)
	h.soldOut = stock.NewSoldOut(h.stock)
	h.startPoller()
	t.Cleanup(func() { h.stopPoll() })
	srv, err := gateway.New(gateway.Deps{
		Log: log, Auth: h.auth, Stock: h.stock, SoldOut: h.soldOut, Semaphore: sem,
		Node: node, Catalog: catalog, Admin: order.NewAdmin(h.store, h.stock),
		Orders: order.NewOrders(h.store, order.NewLookup(h.store, h.broker), h.canceller), Signer: h.signer,
		Publisher: hookedPublisher{order.NewPublisher(h.broker, 2*time.Second), h},
		Batch:     stock.BatchConfig{Pipelines: 2, MaxCalls: 64},
		Broker:    h.broker, Registry: reg,
		Checks:         map[string]func(context.Context) error{"postgres": h.store.Ping, "nats": h.broker.Ping},
		Flow:           flow,
		IdempotencyTTL: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(srv.Handler())
	t.Cleanup(h.srv.Close)

	h.worker, err = worker.New(ctx, worker.Deps{Log: log, Broker: h.broker, Store: h.store, Stock: h.stock,
		Registry: reg, Canceller: h.canceller}, worker.Config{
		Persister:  worker.PersisterConfig{BatchSize: 500, FetchWait: 50 * time.Millisecond},
		Timeouts:   worker.TimeoutConfig{Stream: h.broker.Config().Stream + "_TIMEOUTS", DisableSchedules: opts.noSchedules},
		Reconciler: worker.ReconcilerConfig{Grace: 200 * time.Millisecond, Every: 100 * time.Millisecond},
		Sweeper: worker.SweeperConfig{Every: 200 * time.Millisecond, Grace: 100 * time.Millisecond,
			ReturnAfter: 100 * time.Millisecond},
		Recovery: worker.RecoveryConfig{Every: 100 * time.Millisecond, Settle: 300 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.persister, h.reconciler, h.timeouts = h.worker.Persister(0), h.worker.Reconciler(), h.worker.Timeouts()
	h.sweeper, h.recovery = h.worker.Sweeper(), h.worker.Recovery()
	h.admin, err = h.auth.Mint("admin", gateway.RoleAdmin, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// runLeases renews the node-id lease (if node is set) and the semaphore
// lease in the background, as serve does, until the returned stop is called.
// Without it a test that outlives a lease TTL (a flood on a loaded machine
// takes tens of seconds) sees its gateway refuse buys with 503 once the node
// id lapses.
func runLeases(log *slog.Logger, node *stock.NodeLease, sem *stock.Semaphore) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if node != nil {
		wg.Go(func() { _ = node.Service(log).Run(ctx) })
	}
	wg.Go(func() { _ = sem.Service(log).Run(ctx) })
	return func() { cancel(); wg.Wait() }
}

// buyOutcomes is the gateway's count of buy attempts that ended with outcome
// (ACCEPTED or an error code), from its Prometheus registry.
// An empty outcome counts every finished attempt.
func (h *harness) buyOutcomes(outcome string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "seckill_buys_total" {
			continue
		}
		var n float64
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && (outcome == "" || l.GetValue() == outcome) {
					n += m.GetCounter().GetValue()
				}
			}
		}
		return n
	}
	return 0
}

// startPoller runs the gateway's background loops as serve does: the
// sold-out re-check and the lease renewals.
func (h *harness) startPoller() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.soldOut.Service(testLogger(h.t), 200*time.Millisecond).Run(ctx)
	}()
	stopLeases := runLeases(testLogger(h.t), h.node, h.sem)
	h.stopPoll = func() { cancel(); <-done; stopLeases() }
}

// soldOutPaused runs f with the background loops stopped, so f sees only
// the Redis traffic of the requests it makes.
func (h *harness) soldOutPaused(f func()) {
	h.stopPoll()
	defer h.startPoller()
	f()
}

func gatewaySignerFor(secret string) *gateway.Signer { return gateway.NewSigner(secret) }

// hookedPublisher is the order publisher with the harness's BeforePublish
// hook in front: an order the hook fails is not published.
type hookedPublisher struct {
	p *order.Publisher
	h *harness
}

func (hp hookedPublisher) PublishMany(ctx context.Context, rs []stock.Reservation) []error {
	hook := hp.h.hooks.BeforePublish
	if hook == nil {
		return hp.p.PublishMany(ctx, rs)
	}
	errs := make([]error, len(rs))
	send := make([]stock.Reservation, 0, len(rs))
	at := make([]int, 0, len(rs))
	for i, r := range rs {
		if errs[i] = hook(ctx, r); errs[i] == nil {
			send = append(send, r)
			at = append(at, i)
		}
	}
	if len(send) > 0 {
		for k, err := range hp.p.PublishMany(ctx, send) {
			errs[at[k]] = err
		}
	}
	return errs
}

func (h *harness) userToken(uid int64) string {
	tok, err := h.auth.Mint(strconv.FormatInt(uid, 10), "", time.Hour)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// decode reads the body of r as a T, one of the api shapes.
func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("response %d is not a %T: %q", r.Status, v, r.Body)
	}
	return v
}

// code returns error.code of an error response ("" if none).
func (r response) code() string {
	var e api.ErrorResponse
	_ = json.Unmarshal(r.Body, &e)
	return e.Error.Code
}

func (h *harness) do(method, path, token string, body any, header ...string) response {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		data, err := json.Marshal(b)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Errorf("%s %s: %v", method, path, err)
		return response{}
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: data}
}

type activityOpts struct {
	stock, limit, timeoutSec int64
	start, end               time.Time
}

// publishActivity creates and publishes a one-item activity; it returns the
// activity and item ids.
func (h *harness) publishActivity(o activityOpts) (aid, iid string) {
	h.t.Helper()
	if o.start.IsZero() {
		o.start = time.Now().Add(-time.Minute)
	}
	if o.end.IsZero() {
		o.end = time.Now().Add(time.Hour)
	}
	if o.limit == 0 {
		o.limit = 1
	}
	if o.timeoutSec == 0 {
		o.timeoutSec = 900
	}
	r := h.do("POST", "/admin/v1/activities", h.admin, api.CreateActivityRequest{
		Name: "Double 11", StartAt: o.start.UTC(), EndAt: o.end.UTC(),
		PayTimeoutSeconds: o.timeoutSec, PerUserLimit: o.limit,
		Items: []api.NewItem{{Name: "Phone", PriceCents: 99900, Stock: o.stock}},
	})
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create activity: %d %s", r.Status, r.Body)
	}
	a := decode[api.Activity](h.t, r)
	if len(a.Items) != 1 {
		h.t.Fatalf("create activity: %s, want one item", r.Body)
	}
	aid, iid = a.ID.String(), a.Items[0].ID.String()
	if r := h.do("POST", "/admin/v1/activities/"+aid+"/publish", h.admin, nil); r.Status != http.StatusOK {
		h.t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	return aid, iid
}

func (h *harness) buy(uid int64, aid, iid string, qty int64, header ...string) response {
	return h.do("POST", "/api/v1/seckill", h.userToken(uid),
		api.BuyRequest{ActivityID: h.id(aid), ItemID: h.id(iid), Quantity: qty}, header...)
}

// id parses an id the gateway returned.
func (h *harness) id(s string) api.ID {
	h.t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		h.t.Fatalf("id %q: %v", s, err)
	}
	return api.ID(v)
}

// drain runs the persister until the stream is empty.
func (h *harness) drain() {
	h.t.Helper()
	ctx := context.Background()
	// The signal is the persister consumer itself: nothing waiting, nothing
	// unacked means every order published so far is a row.
	drained := worker.OrdersDrained(h.broker, worker.PersisterDurable)
	cluster.Eventually(h.t, 30*time.Second, func() bool {
		ok, err := drained(ctx)
		if err != nil {
			h.t.Fatal(err)
		}
		if ok {
			return true
		}
		if _, err := h.persister.RunOnce(ctx); err != nil {
			h.t.Fatal(err)
		}
		return false
	})
}

// stats returns the stats of the activity's only item.
func (h *harness) stats(aid string) api.ItemStats {
	h.t.Helper()
	r := h.do("GET", "/admin/v1/activities/"+aid+"/stats", h.admin, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("stats: %d %s", r.Status, r.Body)
	}
	out := decode[api.ActivityStats](h.t, r)
	if len(out.Items) != 1 {
		h.t.Fatalf("stats body: %s", r.Body)
	}
	return out.Items[0]
}

func (h *harness) countRows(where string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.pool.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE "+where, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}
