package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/seckill/seckill/order"
	"github.com/seckill/seckill/order/worker"
	"github.com/seckill/seckill/stock"
)

// watch lists the processes whose CPU an HTTP case reports.
func (e *env) watch(gatewayName string, gatewayPID int) map[string]int {
	w := map[string]int{gatewayName: gatewayPID, "loadgen": os.Getpid(), "nats": e.nats.pid, "worker": e.worker.pid}
	return e.topo.watch(w)
}

func (e *env) benchBaseline(ctx context.Context, o options) (caseResult, error) {
	n := int64(o.rate) * int64((o.warmup+o.duration)/time.Second) * 2
	if err := e.startBaseline(ctx, e.redisAddr, n); err != nil {
		return caseResult{}, err
	}
	log.Printf("baseline: %d req/s for %v after %v warm-up", o.rate, o.duration, o.warmup)
	r, err := attack("baseline", o.rate, o.warmup, o.duration, func(i uint64, t *vegeta.Target) {
		t.Method, t.URL = "POST", e.baseURL+"/buy?u="+strconv.FormatUint(i+1, 10)
	}, e.watch("gateway", e.baseln.pid))
	r.name = "baseline (net/http + 1 EVALSHA)"
	e.baseln.stop()
	e.baseln = nil
	if err == nil {
		err = allAccepted(r)
	}
	return r, err
}

// allAccepted refuses a round in which not every measured buy got its 202:
// a baseline answering LIMIT_EXCEEDED, or a gateway answering 503, does
// other work than the case claims to measure.
func allAccepted(r caseResult) error {
	if got := r.metrics.StatusCodes["202"]; uint64(got) != r.requests {
		return fmt.Errorf("%s: %d of %d requests got 202 (%s); the CPU per request would not be the buy path's",
			r.name, got, r.requests, codes(r.metrics.StatusCodes))
	}
	return nil
}

// tokens mints one user token per request up front, so the attack's own CPU
// is not spent on signing.
func (e *env) tokens(first, n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		tok, err := e.auth.Mint(strconv.Itoa(first+i), "", 6*time.Hour)
		if err != nil {
			return nil, err
		}
		out[i] = "Bearer " + tok
	}
	return out, nil
}

func (e *env) buyTarget(aid, iid int64, toks []string) target {
	body := []byte(fmt.Sprintf(`{"activity_id":"%d","item_id":"%d","quantity":1}`, aid, iid))
	return func(i uint64, t *vegeta.Target) {
		t.Method, t.URL, t.Body = "POST", e.gwURL+"/api/v1/seckill", body
		t.Header = header("Authorization", toks[int(i)%len(toks)], "Content-Type", "application/json")
	}
}

// benchBuy is one round of the full buy path; profile, if set, receives the
// gateway's CPU profile of the measured phase's first half.
func (e *env) benchBuy(ctx context.Context, o options, profile string) (caseResult, error) {
	n := o.rate * int((o.warmup+o.duration)/time.Second)
	aid, iid, err := createActivity(e.gwURL, e.admin, int64(2*n), 1, 900)
	if err != nil {
		return caseResult{}, err
	}
	toks, err := e.tokens(1_000_000, n+o.rate)
	if err != nil {
		return caseResult{}, err
	}
	log.Printf("full buy path: %d req/s for %v after %v warm-up, every buy accepted", o.rate, o.duration, o.warmup)
	if profile != "" {
		go func() {
			time.Sleep(o.warmup)
			e.captureProfile(profile, o.duration/2)
		}()
	}
	m0, _ := promCounters(e.gwURL+"/metrics", batchMetrics...)
	r, err := attack("buy", o.rate, o.warmup, o.duration, e.buyTarget(aid, iid, toks), e.watch("gateway", e.gw.pid))
	r.name = "seckill full buy path (202)"
	r.note = e.batchNote(m0)
	if err == nil {
		err = allAccepted(r)
	}
	return r, err
}

// batchMetrics are the gateway's buy batcher counters.
var batchMetrics = []string{"seckill_buy_script_round_trips_total", "seckill_buy_script_calls_total", "seckill_buy_script_lingers_total"}

// batchNote says how the batcher grouped the buy scripts since m0 (the
// gateway's batchMetrics then); "" if the gateway does not answer.
func (e *env) batchNote(m0 map[string]float64) string {
	m1, err := promCounters(e.gwURL+"/metrics", batchMetrics...)
	if err != nil || m1[batchMetrics[0]] <= m0[batchMetrics[0]] {
		return ""
	}
	trips, calls := m1[batchMetrics[0]]-m0[batchMetrics[0]], m1[batchMetrics[1]]-m0[batchMetrics[1]]
	return fmt.Sprintf("%.0f buy scripts (warm-up included) in %.0f Redis round trips (%.2f per trip; %.0f trips lingered for company first)",
		calls, trips, calls/trips, m1[batchMetrics[2]]-m0[batchMetrics[2]])
}

func (e *env) benchSoldOut(ctx context.Context, o options) (caseResult, error) {
	aid, iid, err := createActivity(e.gwURL, e.admin, 100, 1, 900)
	if err != nil {
		return caseResult{}, err
	}
	n := o.rate * int((o.warmup+o.duration)/time.Second)
	toks, err := e.tokens(5_000_000, 1000+n+o.rate) // 1000 to sell out, then one per request
	if err != nil {
		return caseResult{}, err
	}
	// Sell out first, then measure only sold-out answers.
	if _, err := attack("sellout", 500, 0, time.Second, e.buyTarget(aid, iid, toks[:1000]), nil); err != nil {
		return caseResult{}, err
	}
	// The background (lease renewals, re-checks, recovery) talks to Redis
	// with or without traffic: measure it idle for as long, to subtract.
	idle0, err := e.topo.totalCalls(ctx)
	if err != nil {
		return caseResult{}, err
	}
	gwIdle0, err := cpuTime(e.gw.pid)
	if err != nil {
		return caseResult{}, err
	}
	time.Sleep(o.warmup + o.duration)
	idle1, _ := e.topo.totalCalls(ctx)
	gwIdle1, _ := cpuTime(e.gw.pid)
	e.gwIdle = float64((gwIdle1 - gwIdle0).Microseconds()) / (o.warmup + o.duration).Seconds() / 1000
	log.Printf("sold-out path: %d req/s for %v after %v warm-up", o.rate, o.duration, o.warmup)
	r, err := attack("soldout", o.rate, o.warmup, o.duration, e.buyTarget(aid, iid, toks[1000:]), e.watch("gateway", e.gw.pid))
	after, _ := e.topo.totalCalls(ctx)
	r.name = "seckill sold-out path (409)"
	extra := (after - idle1) - (idle1 - idle0)
	r.note = fmt.Sprintf("Redis commands during %d sold-out answers: %d; during as long idle just before: %d (lease renewals, sold-out re-check, recovery checks); difference %+d",
		r.sent, after-idle1, idle1-idle0, extra)
	return r, err
}

// persistResult is the persister's throughput from a backlog.
type persistResult struct {
	orders  int
	elapsed time.Duration
	perSec  float64
}

func (e *env) benchPersister(ctx context.Context, o options) (persistResult, error) {
	aid, iid, err := createActivity(e.gwURL, e.admin, int64(o.backlog), 1, 900)
	if err != nil {
		return persistResult{}, err
	}
	log.Printf("persister: stopping the worker, publishing a backlog of %d orders", o.backlog)
	e.worker.stop()
	now := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, 4096)
	flush := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return err
			}
		}
		futures = futures[:0]
		return nil
	}
	for i := 0; i < o.backlog; i++ {
		r := stock.Reservation{OrderID: int64(9_000_000_000 + i), ActivityID: aid, ItemID: iid, UserID: int64(20_000_000 + i),
			Quantity: 1, AmountCents: 99900, CreatedAt: now, ExpireAt: now.Add(15 * time.Minute)}
		data, _ := json.Marshal(r)
		msg := &nats.Msg{Subject: e.broker.OrderSubject(r.OrderID), Data: data, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, strconv.FormatInt(r.OrderID, 10))
		f, err := e.broker.JS.PublishMsgAsync(msg)
		if err != nil {
			return persistResult{}, err
		}
		if futures = append(futures, f); len(futures) == cap(futures) {
			if err := flush(); err != nil {
				return persistResult{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return persistResult{}, err
	}
	log.Printf("persister: backlog published, starting the worker")
	if err := e.startWorker(ctx); err != nil {
		return persistResult{}, err
	}
	var first time.Time
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		var n int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE activity_id = $1`, aid).Scan(&n); err != nil {
			return persistResult{}, err
		}
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= o.backlog {
			el := time.Since(first)
			return persistResult{orders: n, elapsed: el, perSec: float64(n) / el.Seconds()}, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return persistResult{}, fmt.Errorf("persister did not finish the backlog within 5 minutes")
}

// lateResult is the payment-timeout lateness distribution.
type lateResult struct {
	orders              int
	p50, p99, max       time.Duration
	early, notCancelled int
}

func (e *env) benchTimeouts(ctx context.Context, o options) (lateResult, error) {
	aid, iid, err := createActivity(e.gwURL, e.admin, int64(o.pending), 1, 900)
	if err != nil {
		return lateResult{}, err
	}
	// Pending orders written straight into PostgreSQL, due uniformly over a
	// 20 s window that opens once they are all scheduled.
	open := time.Now().Add(time.Duration(o.pending/10_000+10) * time.Second)
	orders := make([]order.Order, o.pending)
	for i := range orders {
		orders[i] = order.Order{ID: int64(8_000_000_000 + i), ActivityID: aid, ItemID: iid, UserID: int64(30_000_000 + i),
			Quantity: 1, AmountCents: 99900, Status: order.StatusPending, CreatedAt: time.Now(),
			ExpireAt: open.Add(time.Duration(i) * 20 * time.Second / time.Duration(o.pending))}
	}
	for i := 0; i < len(orders); i += 5000 {
		if _, err := e.store.InsertOrders(ctx, orders[i:min(i+5000, len(orders))]); err != nil {
			return lateResult{}, err
		}
	}
	tm, err := worker.OpenTimeouts(ctx, benchLogger(), e.broker, e.store, nil, worker.TimeoutConfig{})
	if err != nil {
		return lateResult{}, err
	}
	log.Printf("timeouts: scheduling %d pending orders (schedules: %v), due from %s over 20 s", o.pending, tm.Scheduled(), open.Format(time.TimeOnly))
	for i := 0; i < len(orders); i += 2000 {
		if err := tm.Schedule(ctx, orders[i:min(i+2000, len(orders))]); err != nil {
			return lateResult{}, err
		}
	}
	if time.Now().After(open) {
		return lateResult{}, fmt.Errorf("scheduling took past the first expire_at; raise the lead time")
	}
	time.Sleep(time.Until(open.Add(20 * time.Second)))
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		var left int
		if err := e.pool.QueryRow(ctx, `SELECT count(*) FROM orders WHERE activity_id = $1 AND status = 'PENDING'`, aid).Scan(&left); err != nil {
			return lateResult{}, err
		}
		if left == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows, err := e.pool.Query(ctx, `SELECT status, cancelled_at - expire_at FROM orders WHERE activity_id = $1`, aid)
	if err != nil {
		return lateResult{}, err
	}
	var r lateResult
	var lates []time.Duration
	for rows.Next() {
		var status string
		var d *time.Duration
		if err := rows.Scan(&status, &d); err != nil {
			return lateResult{}, err
		}
		r.orders++
		if status != "CANCELLED" || d == nil {
			r.notCancelled++
			continue
		}
		if *d < 0 {
			r.early++
		}
		lates = append(lates, *d)
	}
	if len(lates) == 0 {
		return r, fmt.Errorf("no order was cancelled")
	}
	sort.Slice(lates, func(i, j int) bool { return lates[i] < lates[j] })
	r.p50, r.p99, r.max = lates[len(lates)/2], lates[len(lates)*99/100], lates[len(lates)-1]
	return r, nil
}

// captureProfile saves the gateway's CPU profile for d while the case runs.
func (e *env) captureProfile(path string, d time.Duration) {
	var wg sync.WaitGroup
	for _, p := range []struct{ kind, file string }{{"profile", path}, {"allocs", path + ".allocs"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", e.gwPprof, p.kind, int(d.Seconds())))
			if err != nil {
				log.Printf("profile: %v", err)
				return
			}
			defer resp.Body.Close()
			f, err := os.Create(p.file)
			if err != nil {
				log.Printf("profile: %v", err)
				return
			}
			defer f.Close()
			_, _ = io.Copy(f, resp.Body)
			log.Printf("gateway %s profile written to %s", p.kind, p.file)
		}()
	}
	wg.Wait()
}
