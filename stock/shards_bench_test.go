package stock_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// BenchmarkBuyScriptNodeCheck measures the Redis CPU the buy script costs,
// as Redis itself counts it (INFO commandstats, usec_per_call of EVALSHA),
// with the failover check (the item has nid: one CLUSTER MYID per buy) and
// without it (no nid, as on a single Redis). Run:
//
//	go test -run '^$' -bench BuyScriptNodeCheck -benchtime 20000x ./stock
func BenchmarkBuyScriptNodeCheck(b *testing.B) {
	for _, withNID := range []bool{false, true} {
		name := "without-nid"
		if withNID {
			name = "with-nid"
		}
		b.Run(name, func(b *testing.B) {
			rdb, keys := stocktest.NewCluster(b)
			ctx := context.Background()
			s := stock.NewStore(rdb, keys)
			m := shardMeta(1, 1)
			m.Total = 1 << 40
			if _, err := s.Warm(ctx, m); err != nil {
				b.Fatal(err)
			}
			if !withNID {
				rdb.HDel(ctx, keys.Item(1, 1), "nid")
			}
			master, err := rdb.MasterForKey(ctx, keys.Item(1, 1))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: 1, OrderID: 1, Quantity: 1}); err != nil {
				b.Fatal(err) // loads the script
			}
			master.ConfigResetStat(ctx)
			var id atomic.Int64
			id.Store(1)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := id.Add(1)
					if _, err := s.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: 1, UserID: n, OrderID: n, Quantity: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(usecPerCall(b, master, "evalsha"), "redis-µs/buy")
		})
	}
}

// BenchmarkBatcherDurability measures the buy round trip through the
// Batcher on the cluster, items spread over every master, under fence and
// under replica (WAIT 1 after each round trip on each master it used).
//
//	go test -run '^$' -bench BatcherDurability -benchtime 20000x ./stock
func BenchmarkBatcherDurability(b *testing.B) {
	for _, mode := range []stock.DurabilityMode{stock.DurabilityFence, stock.DurabilityReplica} {
		b.Run(string(mode), func(b *testing.B) {
			rdb, keys := stocktest.NewCluster(b)
			ctx := context.Background()
			s := stock.NewStore(rdb, keys, stock.WithDurability(stock.Durability{Mode: mode, Replicas: 1, Timeout: 50 * time.Millisecond}))
			const items = 12
			for iid := int64(1); iid <= items; iid++ {
				m := shardMeta(1, iid)
				m.Total = 1 << 40
				if _, err := s.Warm(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			var fw recorder
			bt := stock.NewBatcher(s, &fw, stock.BatchConfig{Pipelines: 2, MaxCalls: 256})
			var id atomic.Int64
			b.SetParallelism(32) // a rush: many buys waiting, sharing round trips
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := id.Add(1)
					if _, err := bt.Buy(ctx, stock.BuyRequest{ActivityID: 1, ItemID: n%items + 1, UserID: n, OrderID: n, Quantity: 1}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			st := bt.Stats()
			b.ReportMetric(float64(st.Calls)/float64(max(st.Batches, 1)), "buys/roundtrip")
		})
	}
}

// usecPerCall reads a command's usec_per_call from INFO commandstats.
func usecPerCall(b *testing.B, c *redis.Client, cmd string) float64 {
	info := c.Info(context.Background(), "commandstats").Val()
	for _, l := range splitLines(info) {
		rest, ok := strings.CutPrefix(l, "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
				x, _ := strconv.ParseFloat(v, 64)
				return x
			}
		}
	}
	b.Fatalf("no cmdstat_%s", cmd)
	return 0
}
