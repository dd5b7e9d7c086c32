package stock_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

func TestWarmTwiceNeverResetsStock(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		f.warm(t, m)
		for u := range int64(3) {
			if _, err := f.store.Buy(f.ctx, buy(u)); err != nil {
				t.Fatal(err)
			}
		}
		before := f.dump(t)

		again := m
		again.Total, again.PriceCents = 500, 1
		created, err := f.store.Warm(f.ctx, again)
		if err != nil || created {
			t.Fatalf("second Warm = %v, %v; want not created", created, err)
		}
		if after := f.dump(t); after != before {
			t.Errorf("second Warm changed Redis:\nbefore:\n%s\nafter:\n%s", before, after)
		}
		if n, err := f.store.Available(f.ctx, testAID, []int64{testIID}); err != nil || n[testIID] != 7 {
			t.Errorf("Available = %v, %v; want 7", n, err)
		}
	})
}

func TestWarmWritesMetadata(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		m := meta()
		m.PerUserLimit, m.PayTimeout = 2, 15*time.Minute
		f.warm(t, m)
		got := f.rdb.HGetAll(f.ctx, f.keys.Item(testAID, testIID)).Val()
		want := map[string]string{
			"stock": "10", "total": "10", "price": "99900", "limit": "2", "timeout_s": "900",
			"start_ms": itoa(m.StartAt.UnixMilli()), "end_ms": itoa(m.EndAt.UnixMilli()),
		}
		// Who holds the state: the run_id and replid of the server that
		// ran the script, and on a cluster its node id.
		node := redis.Cmdable(f.rdb)
		if cc, ok := f.rdb.(*redis.ClusterClient); ok {
			m, err := cc.MasterForKey(f.ctx, f.keys.Item(testAID, testIID))
			if err != nil {
				t.Fatal(err)
			}
			node = m
			want["nid"] = m.ClusterMyID(f.ctx).Val()
		}
		want["rid"] = infoValue(node.Info(f.ctx, "server").Val(), "run_id") + ":" +
			infoValue(node.Info(f.ctx, "replication").Val(), "master_replid")
		if len(got) != len(want) {
			t.Errorf("item hash = %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("item field %s = %q, want %q", k, got[k], v)
			}
		}
	})
}

func TestWarmRejectsInvalidMeta(t *testing.T) {
	t.Parallel()
	both(t, func(t *testing.T, top stocktest.Topology) {
		f := setupOn(t, top)
		tests := []struct {
			name string
			edit func(*stock.ItemMeta)
		}{
			{"negative total", func(m *stock.ItemMeta) { m.Total = -1 }},
			{"negative price", func(m *stock.ItemMeta) { m.PriceCents = -1 }},
			{"empty window", func(m *stock.ItemMeta) { m.EndAt = m.StartAt }},
			{"negative limit", func(m *stock.ItemMeta) { m.PerUserLimit = -1 }},
			{"no pay timeout", func(m *stock.ItemMeta) { m.PayTimeout = 0 }},
			{"sub-second pay timeout", func(m *stock.ItemMeta) { m.PayTimeout = 1500 * time.Millisecond }},
		}
		for _, tt := range tests {
			m := meta()
			tt.edit(&m)
			if created, err := f.store.Warm(f.ctx, m); err == nil || created {
				t.Errorf("%s: Warm = %v, %v; want an error", tt.name, created, err)
			}
		}
		if d := f.dump(t); d != "" {
			t.Errorf("invalid metas wrote to Redis:\n%s", d)
		}
	})
}
