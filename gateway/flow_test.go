package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/gateway"
	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock/stocktest"
)

// Sentinel's rules are process-wide, so these tests do not run in parallel:
// Go runs them before any parallel test starts, and every later harness
// loads its own permissive rules again.

func TestSentinelLimitsOneUserWithoutSlowingOthers(t *testing.T) {
	h := setupWith(t, setupOpts{flow: &gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6, UserQPS: 5,
		BreakerErrors: 1e6, BreakerWindowMs: 1000, BreakerRetryMs: 1000}})
	aid, iid := h.publishActivity(activityOpts{stock: 1000, limit: 100})
	var limited, accepted atomic.Int64
	parallel(40, 8, func(int) {
		r := h.buy(9001, aid, iid, 1)
		switch {
		case r.Status == http.StatusTooManyRequests && r.code() == "RATE_LIMITED" && r.Header.Get("Retry-After") != "":
			limited.Add(1)
		case r.Status == http.StatusAccepted:
			accepted.Add(1)
		default:
			t.Errorf("hot user: %d %s", r.Status, r.Body)
		}
	})
	// 40 attempts in well under 2 s at 5/s: most must be refused.
	if accepted.Load() > 10 || limited.Load() < 30 {
		t.Fatalf("hot user: %d accepted, %d rate limited; want at most 10 accepted", accepted.Load(), limited.Load())
	}
	// Another user is not affected by the first one's limit.
	for u := int64(9002); u < 9006; u++ {
		if r := h.buy(u, aid, iid, 1); r.Status != http.StatusAccepted {
			t.Fatalf("other user %d: %d %s", u, r.Status, r.Body)
		}
	}
	// Rate-limited attempts reserved nothing.
	h.drain()
	if st := h.stats(aid); st.Pending != accepted.Load()+4 || !st.Consistent {
		t.Fatalf("stats %+v, want pending %d", st, accepted.Load()+4)
	}
}

func TestSentinelGlobalQPS(t *testing.T) {
	h := setupWith(t, setupOpts{flow: &gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 10, UserQPS: 1000,
		BreakerErrors: 1e6, BreakerWindowMs: 1000, BreakerRetryMs: 1000}})
	aid, iid := h.publishActivity(activityOpts{stock: 1000})
	var limited, accepted atomic.Int64
	start := time.Now()
	parallel(60, 8, func(i int) {
		r := h.buy(int64(100+i), aid, iid, 1)
		if r.Status == http.StatusTooManyRequests && r.code() == "RATE_LIMITED" {
			limited.Add(1)
		} else if r.Status == http.StatusAccepted {
			accepted.Add(1)
		}
	})
	secs := int64(time.Since(start)/time.Second) + 1
	if accepted.Load() > 10*(secs+1) || limited.Load() == 0 {
		t.Fatalf("%d accepted, %d limited in %ds at 10 QPS", accepted.Load(), limited.Load(), secs)
	}
}

func TestRedisOutageOpensBreakerAndRecovers(t *testing.T) {
	srv := stocktest.StartServer(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	h := setupWith(t, setupOpts{rdb: rdb, flow: &gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6,
		UserQPS: 1e6, BreakerErrors: 3, BreakerWindowMs: 2000, BreakerRetryMs: 500}})
	aid, iid := h.publishActivity(activityOpts{stock: 20})
	h.buyN(aid, iid, 1, 5)
	h.drain()

	srv.Stop()
	var open int
	for u := int64(100); u < 120; u++ {
		r := h.buy(u, aid, iid, 1)
		if r.Status != http.StatusServiceUnavailable || r.code() != "UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
			t.Fatalf("buy with Redis down: %d %s, want 503 UNAVAILABLE (never SOLD_OUT)", r.Status, r.Body)
		}
		if strings.Contains(string(r.Body), "circuit open") {
			open++
		}
	}
	if open < 15 {
		t.Fatalf("only %d of 20 buys were refused by the open breaker", open)
	}

	// Redis comes back empty (no persistence): the breaker half-opens, the
	// buy script finds no state, recovery rebuilds it from PostgreSQL.
	srv.Start()
	cluster.Eventually(t, 10*time.Second, func() error {
		if _, err := h.recovery.RunOnce(context.Background()); err != nil {
			return fmt.Errorf("recovery pass: %w", err)
		}
		r := h.buy(200, aid, iid, 1)
		if r.Status != http.StatusAccepted && r.Status != http.StatusServiceUnavailable {
			t.Fatalf("buy after Redis returned: %d %s", r.Status, r.Body)
		}
		if r.Status != http.StatusAccepted {
			return fmt.Errorf("buy after Redis returned: %d %s", r.Status, r.Body)
		}
		return nil
	})
	h.buyN(aid, iid, 300, 14)
	if r := h.buy(400, aid, iid, 1); r.code() != "SOLD_OUT" {
		t.Fatalf("after selling the remainder: %d %s", r.Status, r.Body)
	}
	h.drain()
	if st := h.stats(aid); st.Pending != 20 || st.Available != 0 || !st.Consistent {
		t.Fatalf("stats %+v", st)
	}
}

func TestLostNodeLeaseStopsBuys(t *testing.T) {
	t.Parallel()
	h := setup(t)
	aid, iid := h.publishActivity(activityOpts{stock: 10})
	ctx := context.Background()
	// Another process takes this gateway's node id (its lease expired).
	if err := h.rdb.Set(ctx, h.keys.Node(h.node.ID()), "someone-else", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := h.node.RunOnce(ctx); err == nil {
		t.Fatal("renewal of a stolen lease succeeded")
	}
	before := h.snapshot()
	if r := h.buy(1, aid, iid, 1); r.Status != http.StatusServiceUnavailable || r.code() != "UNAVAILABLE" {
		t.Fatalf("buy without a node lease: %d %s, want 503", r.Status, r.Body)
	}
	if after := h.snapshot(); after != before {
		t.Fatal("a buy without a node lease changed state")
	}
}

// holdBuysOf is a go-redis hook that holds every buy script of one user
// (EVALSHA or EVAL, alone or in a pipeline) until release is closed: Redis
// is slow for that user.
type holdBuysOf struct {
	user    string
	release <-chan struct{}
}

func (h holdBuysOf) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h holdBuysOf) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.hold(cmd)
		return next(ctx, cmd)
	}
}

func (h holdBuysOf) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, cmd := range cmds {
			h.hold(cmd)
		}
		return next(ctx, cmds)
	}
}

// hold waits for release if cmd is a buy script of h.user: the script's
// ARGV[2] (after the name, the script, the key count and the keys).
func (h holdBuysOf) hold(cmd redis.Cmder) {
	args := cmd.Args()
	if name := cmd.Name(); (name != "evalsha" && name != "eval") || len(args) < 3 {
		return
	}
	nkeys, _ := args[2].(int)
	if i := 3 + nkeys + 1; i < len(args) && args[i] == h.user {
		<-h.release
	}
}

func TestClientsWhoLeaveDoNotOpenTheBreaker(t *testing.T) {
	const leaver = 666
	// Redis is slow for this one; the client gives up.
	release := make(chan struct{})
	h := setupWith(t, setupOpts{
		flow: &gateway.FlowConfig{LogDir: sentinelLogDir, BuyQPS: 1e6, UserQPS: 1e6,
			BreakerErrors: 3, BreakerWindowMs: 5000, BreakerRetryMs: 5000},
		redisHook: holdBuysOf{user: strconv.Itoa(leaver), release: release},
	})
	aid, iid := h.publishActivity(activityOpts{stock: 10})
	body := fmt.Sprintf(`{"activity_id":%q,"item_id":%q,"quantity":1}`, aid, iid)
	for i := 0; i < 10; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "POST", h.srv.URL+"/api/v1/seckill", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+h.userToken(leaver))
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			t.Fatalf("request %d was answered (%d); the test needs it abandoned", i, resp.StatusCode)
		}
		cancel()
	}
	close(release) // the held round trips free their slots
	// The handlers finish after their clients left: wait until all ten
	// have counted their outcome (after the breaker saw it), or the buy
	// below could pass before the breaker was fed.
	cluster.Eventually(t, 10*time.Second, func() error {
		if n := h.buyOutcomes(""); n != 10 {
			return fmt.Errorf("%v of 10 abandoned buys finished", n)
		}
		return nil
	})
	if r := h.buy(1, aid, iid, 1); r.Status != http.StatusAccepted {
		t.Fatalf("after 10 abandoned requests: %d %s; the breaker must stay closed", r.Status, r.Body)
	}
}
