package stock_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// TestShardChecksDuringResharding: while an item's slot migrates, the source
// master still lists the slot as its own but answers ASK for the moved key.
// Its shard checks (CheckShards, and ShardHook on every new connection)
// must pass over that key, not fail: failing the hook fails every new
// connection to that master.
func TestShardChecksDuringResharding(t *testing.T) {
	t.Parallel()
	_, rdb, keys := stocktest.NewPrivateCluster(t)
	ctx := t.Context()
	s := stock.NewStore(rdb, keys)
	ref := stock.ItemRef{ActivityID: 1, ItemID: 1}
	if _, err := s.Warm(ctx, shardMeta(1, 1)); err != nil {
		t.Fatal(err)
	}
	key := keys.Item(1, 1)
	slot := stock.Slot(key)
	src, err := rdb.MasterForKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var dst *redis.Client
	if err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		if m.Options().Addr != src.Options().Addr && dst == nil {
			dst = m
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	srcID, dstID := src.ClusterMyID(ctx).Val(), dst.ClusterMyID(ctx).Val()
	if err := dst.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := src.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(dst.Options().Addr, ":")
	if err := src.Do(ctx, "MIGRATE", host, port, "", 0, 5000, "KEYS", key).Err(); err != nil {
		t.Fatal(err)
	}

	reg := stock.NewRegistry()
	reg.Add(ref)
	checker := stock.NewStore(rdb, keys, stock.WithRegistry(reg), stock.WithLogger(discardLog()))
	if _, err := checker.CheckShards(ctx); err != nil {
		t.Fatalf("shard check while slot %d migrates: %v", slot, err)
	}
	conn := redis.NewClient(&redis.Options{Addr: src.Options().Addr, Protocol: 2,
		OnConnect: stock.ShardHook(reg, keys, discardLog())})
	t.Cleanup(func() { _ = conn.Close() })
	if err := conn.Ping(ctx).Err(); err != nil {
		t.Fatalf("new connection to the source master while slot %d migrates: %v", slot, err)
	}
	// The importing master answers for the key only after ASKING.
	pipe := dst.Pipeline()
	pipe.Do(ctx, "ASKING")
	item := pipe.HMGet(ctx, key, "stock", "fenced")
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if v := item.Val(); v[0] == nil || v[1] != nil {
		t.Fatalf("the migrated item on its new master: stock, fenced = %v; want it there, not fenced", v)
	}
}
