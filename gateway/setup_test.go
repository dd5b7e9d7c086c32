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
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
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
	hooks      *gateway.Hooks
	soldOut    *stock.SoldOut
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
	// flow, when set, replaces the permissive Sentinel rules.
	flow *gateway.FlowConfig
	// wrapBuyer, when set, wraps the buy-script runner (fault injection).
	wrapBuyer func(gateway.Buyer) gateway.Buyer
}

func setup(t *testing.T) *harness { t.Helper(); return setupWith(t, setupOpts{}) }

func setupWith(t *testing.T, opts setupOpts) *harness {
	t.Helper()
	ctx := context.Background()
	log := testLogger(t)
	h := &harness{t: t, hooks: &gateway.Hooks{}}
	h.pool = ordertest.NewPool(t)
	if opts.rdb != nil {
		h.rdb, h.keys = opts.rdb, stock.Keys{Prefix: "sk"}
	} else {
		h.rdb, h.keys = stocktest.New(t)
	}
	h.broker = opts.broker
	if h.broker == nil {
		h.broker = ordertest.NewBroker(t)
	}
	h.stock = stock.NewStore(h.rdb, h.keys)
	h.store = order.NewStore(h.pool)
	h.auth = gateway.NewAuth(testSecret)

	holder := fmt.Sprintf("test-%s-%d", t.Name(), time.Now().UnixNano())
	node, err := stock.AcquireNode(ctx, h.rdb, h.keys, holder, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	h.node = node
	sem := stock.NewSemaphore(h.rdb, h.keys, stock.SemaphoreConfig{
		Name: "buy", Capacity: 512, Block: 32, TTL: 5 * time.Second, Holder: holder,
	})
	t.Cleanup(func() { _ = sem.Close(context.Background()); _ = node.Release(context.Background()) })
	// Renew the node lease as serve does: unrenewed, it lapses locally after
	// 8s and a test running longer (a loaded machine) gets 503 on its buys.
	lease := node.Service(log)
	if err := lease.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lease.StopAndCancel)
	h.signer = gateway.NewSigner(testSecret + "-payments")
	h.canceller = order.NewCanceller(log, h.store, h.stock)
	flow := gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6, UserQPS: 100_000,
		BreakerErrors: 1e6, BreakerWindowMs: 1000, BreakerRetryMs: 1000}
	if opts.flow != nil {
		flow = *opts.flow
	}
	reg := prometheus.NewRegistry()
	catalog := order.NewCatalog(h.store, 50*time.Millisecond)
	h.soldOut = stock.NewSoldOut(h.stock)
	// Buys go through the coalescing batcher, as serve runs them.
	batcher := stock.NewBatcher(h.stock, 2, 64, 0)
	var buyer gateway.Buyer = batcher
	if opts.wrapBuyer != nil {
		buyer = opts.wrapBuyer(buyer)
	}
	h.startPoller()
	t.Cleanup(func() { h.stopPoll() })
	srv, err := gateway.New(gateway.Deps{
		Log: log, Auth: h.auth, Stock: h.stock, Buyer: buyer, SoldOut: h.soldOut, Semaphore: sem,
		Node: node, Catalog: catalog, Store: h.store, Admin: order.NewAdmin(h.store, h.stock),
		Orders: order.NewOrders(h.store, order.NewLookup(h.store, h.broker), h.canceller), Signer: h.signer,
		Publisher: order.NewPublisher(h.broker, 2*time.Second),
		Broker:    h.broker, Registry: reg,
		Checks:         map[string]func(context.Context) error{"postgres": h.store.Ping, "nats": h.broker.Ping},
		Flow:           flow,
		IdempotencyTTL: time.Hour,
		Hooks:          gateway.Hooks{BeforePublish: func(ctx context.Context, r stock.Reservation) error { return h.beforePublish(ctx, r) }},
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

// startPoller runs the sold-out re-check in the background, as serve does.
func (h *harness) startPoller() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = h.soldOut.Service(testLogger(h.t), 200*time.Millisecond).Run(ctx)
	}()
	h.stopPoll = func() { cancel(); <-done }
}

// soldOutPaused runs f with the background re-check stopped, so f sees
// only the Redis traffic of the requests it makes.
func (h *harness) soldOutPaused(f func()) {
	h.stopPoll()
	defer h.startPoller()
	f()
}

func gatewaySignerFor(secret string) *gateway.Signer { return gateway.NewSigner(secret) }

func (h *harness) beforePublish(ctx context.Context, r stock.Reservation) error {
	if h.hooks.BeforePublish != nil {
		return h.hooks.BeforePublish(ctx, r)
	}
	return nil
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

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not JSON: %q", r.Status, r.Body)
	}
	return m
}

// code returns error.code of an error response ("" if none).
func (r response) code() string {
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
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
	r := h.do("POST", "/admin/v1/activities", h.admin, map[string]any{
		"name": "Double 11", "start_at": o.start.UTC().Format(time.RFC3339Nano), "end_at": o.end.UTC().Format(time.RFC3339Nano),
		"pay_timeout_seconds": o.timeoutSec, "per_user_limit": o.limit,
		"items": []map[string]any{{"name": "Phone", "price_cents": 99900, "stock": o.stock}},
	})
	if r.Status != http.StatusCreated {
		h.t.Fatalf("create activity: %d %s", r.Status, r.Body)
	}
	m := r.json(h.t)
	aid = m["id"].(string)
	iid = m["items"].([]any)[0].(map[string]any)["id"].(string)
	if r := h.do("POST", "/admin/v1/activities/"+aid+"/publish", h.admin, nil); r.Status != http.StatusOK {
		h.t.Fatalf("publish: %d %s", r.Status, r.Body)
	}
	return aid, iid
}

func (h *harness) buy(uid int64, aid, iid string, qty int64, header ...string) response {
	return h.do("POST", "/api/v1/seckill", h.userToken(uid),
		map[string]any{"activity_id": aid, "item_id": iid, "quantity": qty}, header...)
}

// drain runs the persister until the stream is empty.
func (h *harness) drain() {
	h.t.Helper()
	ctx := context.Background()
	// The signal is the persister consumer itself: nothing waiting, nothing
	// unacked means every order published so far is a row.
	drained := worker.OrdersDrained(h.broker, worker.PersisterDurable)
	stocktest.Eventually(h.t, 30*time.Second, func() bool {
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

type itemStats struct {
	StockTotal, Available, Reserved, Pending, Paid, Cancelled, Returning int64
	Consistent                                                           bool
}

func (h *harness) stats(aid string) itemStats {
	h.t.Helper()
	r := h.do("GET", "/admin/v1/activities/"+aid+"/stats", h.admin, nil)
	if r.Status != http.StatusOK {
		h.t.Fatalf("stats: %d %s", r.Status, r.Body)
	}
	var out struct {
		Items []struct {
			StockTotal int64 `json:"stock_total"`
			Available  int64 `json:"available"`
			Reserved   int64 `json:"reserved"`
			Pending    int64 `json:"pending"`
			Paid       int64 `json:"paid"`
			Cancelled  int64 `json:"cancelled"`
			Returning  int64 `json:"returning"`
			Consistent bool  `json:"consistent"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil || len(out.Items) != 1 {
		h.t.Fatalf("stats body: %s", r.Body)
	}
	i := out.Items[0]
	return itemStats{i.StockTotal, i.Available, i.Reserved, i.Pending, i.Paid, i.Cancelled, i.Returning, i.Consistent}
}

func (h *harness) countRows(where string, args ...any) int64 {
	h.t.Helper()
	var n int64
	if err := h.pool.QueryRow(context.Background(), "SELECT count(*) FROM orders WHERE "+where, args...).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}
