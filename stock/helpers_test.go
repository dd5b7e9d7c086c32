package stock_test

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// Test ids sit above 2^53 so that any trip through a double would show.
const (
	testAID  = int64(1)<<53 + 7
	testIID  = int64(1)<<53 + 12
	bigBase  = int64(1) << 60
	hugeUser = int64(1)<<62 + 42
)

var nextOrder atomic.Int64

// newOrderID returns a process-unique order id far above 2^53.
func newOrderID() int64 { return bigBase + nextOrder.Add(1)*1_000_003 }

// fixture is one test's Redis, keys and store.
type fixture struct {
	ctx   context.Context
	rdb   redis.UniversalClient
	keys  stock.Keys
	store *stock.Store
}

func setup(t testing.TB) *fixture { return setupOn(t, stocktest.Single) }

// setupOn is setup on topology top.
func setupOn(t testing.TB, top stocktest.Topology) *fixture {
	t.Helper()
	rdb, keys := stocktest.Open(t, top)
	return &fixture{ctx: t.Context(), rdb: rdb, keys: keys, store: stock.NewStore(rdb, keys)}
}

// both runs fn as a parallel subtest on a single Redis and on the shared
// Redis Cluster (stocktest.Topologies).
func both(t *testing.T, fn func(t *testing.T, top stocktest.Topology)) {
	t.Helper()
	for _, top := range stocktest.Topologies {
		t.Run(string(top), func(t *testing.T) {
			t.Parallel()
			fn(t, top)
		})
	}
}

// scanKeys lists the keys matching pattern: on a cluster, of every master.
func scanKeys(ctx context.Context, rdb redis.UniversalClient, pattern string) ([]string, error) {
	scan := func(ctx context.Context, c redis.Cmdable) ([]string, error) {
		var keys []string
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		return keys, iter.Err()
	}
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return scan(ctx, rdb)
	}
	var mu sync.Mutex
	var all []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := scan(ctx, m)
		mu.Lock()
		all = append(all, keys...)
		mu.Unlock()
		return err
	})
	return all, err
}

// meta returns an item on sale now: 10 units, no per-user limit.
func meta() stock.ItemMeta {
	now := time.Now()
	return stock.ItemMeta{
		ActivityID: testAID, ItemID: testIID, Total: 10, PriceCents: 99900,
		StartAt: now.Add(-time.Hour), EndAt: now.Add(time.Hour), PayTimeout: 900 * time.Second,
	}
}

// warm publishes m and fails the test unless it was created.
func (f *fixture) warm(t testing.TB, m stock.ItemMeta) {
	t.Helper()
	created, err := f.store.Warm(f.ctx, m)
	if err != nil || !created {
		t.Fatalf("Warm = %v, %v; want created", created, err)
	}
}

// buy is a 1-unit buy of the test item by user with a fresh order id.
func buy(user int64) stock.BuyRequest {
	return stock.BuyRequest{ActivityID: testAID, ItemID: testIID, UserID: user, OrderID: newOrderID(), Quantity: 1}
}

// dump renders every key of the test and its value, TTLs aside, so two dumps
// compare equal exactly when nothing was written in between.
func (f *fixture) dump(t testing.TB) string {
	t.Helper()
	keys, err := scanKeys(f.ctx, f.rdb, f.keys.Prefix+":*")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		typ := f.rdb.Type(f.ctx, k).Val()
		var v any
		switch typ {
		case "string":
			v = f.rdb.Get(f.ctx, k).Val()
		case "hash":
			v = f.rdb.HGetAll(f.ctx, k).Val()
		case "zset":
			v = f.rdb.ZRangeWithScores(f.ctx, k, 0, -1).Val()
		case "set":
			m := f.rdb.SMembers(f.ctx, k).Val()
			sort.Strings(m)
			v = m
		default:
			t.Fatalf("dump: key %s has unexpected type %s", k, typ)
		}
		fmt.Fprintf(&b, "%s %s %v\n", k, typ, v)
	}
	return b.String()
}

// unreachable returns a client to a port nothing listens on, for checking that
// infrastructure failures are reported as errors, not business outcomes.
func unreachable(t testing.TB) redis.UniversalClient {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// businessErrs are the outcomes an infrastructure failure must never become.
var businessErrs = []error{
	stock.ErrSoldOut, stock.ErrLimitExceeded, stock.ErrNotStarted, stock.ErrEnded,
	stock.ErrNotPublished, stock.ErrBusy, stock.ErrLeaseLost, stock.ErrNoFreeNode,
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
