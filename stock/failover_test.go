package stock_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
	"github.com/seckill/seckill/stock/stocktest"
)

// clusterRig is a private Redis Cluster with seckill's client on it: the
// shard hook on every connection, a registry, and items spread so that
// every master holds some.
type clusterRig struct {
	t      *testing.T
	c      *cluster.RedisCluster
	rdb    *redis.ClusterClient
	keys   stock.Keys
	reg    *stock.Registry
	s      *stock.Store
	nextID int64
}

func newClusterRig(t *testing.T) *clusterRig {
	t.Helper()
	c, _, keys := stocktest.NewPrivateCluster(t)
	reg := stock.NewRegistry()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2,
		DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, WriteTimeout: 300 * time.Millisecond,
		OnConnect: stock.ShardHook(reg, keys, discardLog())})
	t.Cleanup(func() { _ = rdb.Close() })
	return &clusterRig{t: t, c: c, rdb: rdb, keys: keys, reg: reg,
		s: stock.NewStore(rdb, keys, stock.WithRegistry(reg)), nextID: 1000}
}

// spread warms items of activity aid until every master holds perMaster of
// them, and returns them by master address.
func (r *clusterRig) spread(aid int64, perMaster int) map[string][]stock.ItemRef {
	r.t.Helper()
	ctx := r.t.Context()
	// The cluster's own view, not the client's cached one, which may
	// predate an earlier failover.
	slots, err := r.rdb.ClusterSlots(ctx).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	out := map[string][]stock.ItemRef{}
	for iid := int64(1); ; iid++ {
		slot := stock.Slot(r.keys.Item(aid, iid))
		addr := ""
		for _, sr := range slots {
			if slot >= sr.Start && slot <= sr.End && len(sr.Nodes) > 0 {
				addr = sr.Nodes[0].Addr
			}
		}
		if addr == "" {
			r.t.Fatalf("slot %d not served", slot)
		}
		if len(out[addr]) >= perMaster {
			full := len(out) == 3
			for _, items := range out {
				full = full && len(items) >= perMaster
			}
			if full {
				return out
			}
			continue
		}
		if _, err := r.s.Warm(ctx, shardMeta(aid, iid)); err != nil {
			r.t.Fatal(err)
		}
		out[addr] = append(out[addr], stock.ItemRef{ActivityID: aid, ItemID: iid})
	}
}

func (r *clusterRig) buy(it stock.ItemRef) error {
	r.nextID++
	_, err := r.s.Buy(r.t.Context(), stock.BuyRequest{ActivityID: it.ActivityID, ItemID: it.ItemID,
		UserID: r.nextID, OrderID: r.nextID, Quantity: 1})
	return err
}

func (r *clusterRig) fenced(it stock.ItemRef) bool {
	r.t.Helper()
	v, err := r.rdb.HGet(r.t.Context(), r.keys.Item(it.ActivityID, it.ItemID), "fenced").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		r.t.Fatalf("item %s: %v", refName(it), err)
	}
	return v == "1"
}

func (r *clusterRig) node(addr string) *cluster.Redis {
	for _, n := range r.c.Nodes {
		if n.Addr == addr {
			return n
		}
	}
	r.t.Fatalf("no node %s", addr)
	return nil
}

// describe lists every node's address, role, node id and run_id.
func (r *clusterRig) describe() string {
	var out []string
	for _, n := range r.c.Nodes {
		if !n.Running() {
			out = append(out, n.Addr+" down")
			continue
		}
		cl := n.Client()
		info := cl.Info(r.t.Context(), "server", "replication").Val()
		out = append(out, fmt.Sprintf("%s %s id=%s run_id=%s", n.Addr, infoValue(info, "role"),
			cl.ClusterMyID(r.t.Context()).Val(), infoValue(info, "run_id")))
		cl.Close()
	}
	return strings.Join(out, "; ")
}

// hasReplica reports whether a running node replicates master.
func (r *clusterRig) hasReplica(master *cluster.Redis) bool {
	return r.findReplica(master) != nil
}

// replicaOf returns the node replicating master.
func (r *clusterRig) replicaOf(master *cluster.Redis) *cluster.Redis {
	r.t.Helper()
	if n := r.findReplica(master); n != nil {
		return n
	}
	r.t.Fatalf("no replica of %s", master.Addr)
	return nil
}

func (r *clusterRig) findReplica(master *cluster.Redis) *cluster.Redis {
	for _, n := range r.c.Nodes {
		if n == master || !n.Running() {
			continue
		}
		cl := n.Client()
		info := cl.Info(r.t.Context(), "replication").Val()
		cl.Close()
		if infoValue(info, "role") == "slave" && infoValue(info, "master_port") == fmt.Sprint(master.Port) {
			return n
		}
	}
	return nil
}

// others returns the items not on master addr.
func others(byMaster map[string][]stock.ItemRef, addr string) []stock.ItemRef {
	var out []stock.ItemRef
	for a, items := range byMaster {
		if a != addr {
			out = append(out, items...)
		}
	}
	return out
}

// rebuildAll rebuilds items as PostgreSQL would know them (holders aside:
// the test items have no limit, so only the count matters here).
func (r *clusterRig) rebuildAll(items []stock.ItemRef) {
	r.t.Helper()
	for _, it := range items {
		if created, err := r.s.Rebuild(r.t.Context(), stock.ItemState{Meta: shardMeta(it.ActivityID, it.ItemID)}); err != nil || !created {
			r.t.Fatalf("rebuild %s: %v %v", refName(it), created, err)
		}
	}
}

// TestClusterShardLossFencesOnlyThatShard runs the three ways a Redis
// Cluster shard can lose writes on one private cluster, a shard each:
// a master killed and replaced by its replica, a master paused past the
// node timeout (failed over while alive), and a master restarted from its
// append-only file with no failover. Each time the items of that shard are
// fenced (buys answer NOT_PUBLISHED) until rebuilt, and the items of the
// other shards are never fenced and keep selling throughout.
func TestClusterShardLossFencesOnlyThatShard(t *testing.T) {
	t.Parallel()
	r := newClusterRig(t)
	ctx := t.Context()

	lose := func(name string, aid int64, fault func(master *cluster.Redis)) {
		t.Logf("%s", name)
		byMaster := r.spread(aid, 2)
		var victim string
		for a := range byMaster {
			if r.hasReplica(r.node(a)) {
				victim = a
				break
			}
		}
		if victim == "" {
			t.Fatalf("%s: no master with a replica", name)
		}
		for _, it := range append(byMaster[victim], others(byMaster, victim)...) {
			if err := r.buy(it); err != nil {
				t.Fatalf("%s: buy before the fault: %v", name, err)
			}
		}
		// Every write so far reached the victim's replica: the lost shard's
		// items then exist after a failover, and must be fenced (a write
		// the replica never got leaves its item missing, which recovery
		// rebuilds too; that case is not the one under test).
		// (WAIT covers the writes of its own connection, and the replication
		// stream is ordered: one write here, then WAIT, covers all before.)
		vc := redis.NewClient(&redis.Options{Addr: victim, Protocol: 2, ReadTimeout: 10 * time.Second})
		first := byMaster[victim][0]
		if err := vc.Set(ctx, r.keys.Idempotency(first.ActivityID, first.ItemID, 0, "wait"), "1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := vc.Do(ctx, "WAIT", 1, 5000).Int64(); err != nil || n < 1 {
			t.Fatalf("%s: WAIT on the victim: %d %v", name, n, err)
		}
		vc.Close()
		fault(r.node(victim))
		rest := others(byMaster, victim)
		cluster.Eventually(t, 60*time.Second, func() error {
			for _, it := range rest {
				if err := r.buy(it); err != nil {
					t.Fatalf("%s: buy of %s on a healthy shard: %v", name, refName(it), err)
				}
			}
			err := r.buy(first)
			if errors.Is(err, stock.ErrNotPublished) {
				return nil
			}
			return fmt.Errorf("buy on the lost shard: %v, want ErrNotPublished", err)
		})
		// The shard check fences the shard's items no buy has touched yet.
		cluster.Eventually(t, 30*time.Second, func() error {
			_, err := r.s.CheckShards(ctx)
			if !r.fenced(byMaster[victim][1]) {
				it := byMaster[victim][1]
				k := r.keys.Item(it.ActivityID, it.ItemID)
				return fmt.Errorf("second item of the lost shard not fenced (check: %v): %v; victim %s slot %d; nodes: %s", err,
					r.rdb.HGetAll(ctx, k).Val(), victim, stock.Slot(k), r.describe())
			}
			return nil
		})
		for _, it := range rest {
			if r.fenced(it) {
				t.Fatalf("%s: item %s of a healthy shard fenced", name, refName(it))
			}
		}
		if err := r.buy(byMaster[victim][1]); !errors.Is(err, stock.ErrNotPublished) {
			t.Fatalf("%s: buy of a fenced item: %v", name, err)
		}
		r.rebuildAll(byMaster[victim])
		for _, it := range append(byMaster[victim], rest...) {
			if err := r.buy(it); err != nil {
				t.Fatalf("%s: buy after the rebuild: %v", name, err)
			}
		}
	}

	var killed *cluster.Redis
	if os.Getenv("ONLY_AOF") != "" {
		lose("restart a master from its append-only file before any failover", 13, restartFromAOF(t, r))
		return
	}
	lose("kill -9 a master; its replica takes over", 11, func(m *cluster.Redis) {
		if err := m.Kill(); err != nil {
			t.Fatal(err)
		}
		killed = m
	})
	// The old master comes back as a replica of the new one.
	if err := killed.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.c.WaitHealthy(ctx, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	lose("pause a master past the node timeout; it is failed over while alive", 12, func(m *cluster.Redis) {
		replica := r.replicaOf(m)
		if err := m.Pause(); err != nil {
			t.Fatal(err)
		}
		cluster.Eventually(t, 30*time.Second, func() bool {
			cl := replica.Client()
			defer cl.Close()
			return infoValue(cl.Info(ctx, "replication").Val(), "role") == "master"
		})
		if err := m.Resume(); err != nil {
			t.Fatal(err)
		}
	})
	lose("restart a master from its append-only file before any failover", 13, restartFromAOF(t, r))
}

func restartFromAOF(t *testing.T, r *clusterRig) func(m *cluster.Redis) {
	ctx := t.Context()
	return func(m *cluster.Redis) {
		replica := r.replicaOf(m)
		rc := replica.Client()
		defer rc.Close()
		if err := rc.ConfigSet(ctx, "cluster-replica-no-failover", "yes").Err(); err != nil {
			t.Fatal(err)
		}
		if err := m.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := m.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		cl := m.Client()
		defer cl.Close()
		if infoValue(cl.Info(ctx, "replication").Val(), "role") != "master" {
			t.Fatal("the restarted master is no longer a master")
		}
	}
}

// TestClusterBatchOnePausedMaster: a round trip that spans every master,
// while one master answers nothing, fails only the buys sent to that
// master; the other masters' buys succeed, in both durability modes.
func TestClusterBatchOnePausedMaster(t *testing.T) {
	t.Parallel()
	c, _, keys := stocktest.NewPrivateCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2, MaxRetries: -1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := t.Context()
	for i, mode := range []stock.DurabilityMode{stock.DurabilityFence, stock.DurabilityReplica} {
		s := stock.NewStore(rdb, keys, stock.WithDurability(stock.Durability{Mode: mode, Replicas: 1, Timeout: time.Second}))
		r := &clusterRig{t: t, c: c, rdb: rdb, keys: keys, s: s, reg: s.Registry()}
		byMaster := r.spread(int64(20+i), 3)
		var paused *cluster.Redis
		for a := range byMaster {
			paused = r.node(a)
			break
		}
		var fw recorder
		b := stock.NewBatcher(s, &fw, stock.BatchConfig{Pipelines: 1, MaxCalls: 64, Linger: 0})
		if err := paused.Pause(); err != nil {
			t.Fatal(err)
		}
		// One round trip carrying every item: the batcher's only slot is
		// held by a first call while the others queue.
		var all []stock.ItemRef
		for _, items := range byMaster {
			all = append(all, items...)
		}
		errs := make([]error, len(all))
		var wg sync.WaitGroup
		for i, it := range all {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = b.Buy(ctx, stock.BuyRequest{ActivityID: it.ActivityID, ItemID: it.ItemID,
					UserID: int64(i + 1), OrderID: int64(5000 + i), Quantity: 1})
			}()
		}
		wg.Wait()
		if err := paused.Resume(); err != nil {
			t.Fatal(err)
		}
		for i, it := range all {
			m, err := rdb.MasterForKey(ctx, keys.Item(it.ActivityID, it.ItemID))
			if err != nil {
				t.Fatal(err)
			}
			onPaused := m.Options().Addr == paused.Addr
			switch {
			case onPaused && errs[i] == nil:
				t.Errorf("%s: buy of %s on the paused master succeeded", mode, refName(it))
			case onPaused && errors.Is(errs[i], stock.ErrNotPublished):
				t.Errorf("%s: buy on the paused master reported as a business outcome: %v", mode, errs[i])
			case !onPaused && errs[i] != nil:
				t.Errorf("%s: buy of %s on a healthy master: %v", mode, refName(it), errs[i])
			}
		}
		if got, want := fw.count(), len(others(byMaster, paused.Addr)); got != want {
			t.Errorf("%s: %d reservations handed on, want %d (the healthy masters' buys)", mode, got, want)
		}
		if err := c.WaitHealthy(ctx, 30*time.Second); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReplicaDurability: with DurabilityReplica a buy is handed on only
// once its master confirmed the replicas asked for. On the cluster (one
// replica per master) asking for one succeeds; asking for two, or for one
// on a single Redis with no replica, fails every buy with
// ErrNotReplicated, hands nothing on and leaves the reservation in Redis.
func TestReplicaDurability(t *testing.T) {
	t.Parallel()
	cases := []struct {
		top      stocktest.Topology
		replicas int
		ok       bool
	}{
		{stocktest.Cluster, 1, true},
		{stocktest.Cluster, 2, false},
		{stocktest.Single, 1, false},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%d", tc.top, tc.replicas), func(t *testing.T) {
			t.Parallel()
			rdb, keys := stocktest.Open(t, tc.top)
			ctx := t.Context()
			// Where the replicas are there, a timeout no loaded machine
			// reaches; where they are not, a short one.
			timeout := 20 * time.Millisecond
			if tc.ok {
				timeout = 5 * time.Second
			}
			s := stock.NewStore(rdb, keys, stock.WithDurability(stock.Durability{
				Mode: stock.DurabilityReplica, Replicas: tc.replicas, Timeout: timeout}))
			var items []stock.ItemRef
			for iid := int64(1); iid <= 6; iid++ {
				if _, err := s.Warm(ctx, shardMeta(1, iid)); err != nil {
					t.Fatal(err)
				}
				items = append(items, stock.ItemRef{ActivityID: 1, ItemID: iid})
			}
			var fw recorder
			b := stock.NewBatcher(s, &fw, stock.BatchConfig{Pipelines: 1, MaxCalls: 64})
			errs := make([]error, 3*len(items))
			var wg sync.WaitGroup
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					it := items[i%len(items)]
					_, errs[i] = b.Buy(ctx, stock.BuyRequest{ActivityID: it.ActivityID, ItemID: it.ItemID,
						UserID: int64(i + 1), OrderID: int64(7000 + i), Quantity: 1})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if tc.ok && err != nil {
					t.Errorf("buy %d: %v", i, err)
				}
				if !tc.ok && !errors.Is(err, stock.ErrNotReplicated) {
					t.Errorf("buy %d: %v, want ErrNotReplicated", i, err)
				}
			}
			if tc.ok && fw.count() != len(errs) {
				t.Errorf("%d handed on, want %d", fw.count(), len(errs))
			}
			if !tc.ok && fw.count() != 0 {
				t.Errorf("%d handed on, want none", fw.count())
			}
			// The reservations stand in Redis either way: the reconciler's.
			var held int64
			for _, it := range items {
				snap, err := s.Snapshot(ctx, it.ActivityID, it.ItemID)
				if err != nil {
					t.Fatal(err)
				}
				held += int64(len(snap.Reservations))
			}
			if held != int64(len(errs)) {
				t.Errorf("%d reservations in Redis, want %d", held, len(errs))
			}
		})
	}
}

// recorder is a Forwarder that accepts everything and counts it.
type recorder struct {
	mu sync.Mutex
	n  int
}

func (r *recorder) PublishMany(_ context.Context, rs []stock.Reservation) []error {
	r.mu.Lock()
	r.n += len(rs)
	r.mu.Unlock()
	return make([]error, len(rs))
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
