package main

import (
	"context"
	"strconv"
	"testing"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
)

// TestTopologyOfACluster checks what -cluster's per-shard figures stand
// on: every master found with its replica and slots, each item key placed
// on the master that really holds it (a direct write there succeeds, where
// any other master would answer MOVED), and script calls counted on that
// master alone.
func TestTopologyOfACluster(t *testing.T) {
	rc := cluster.NewRedisCluster(t, 3, 1)
	ctx := context.Background()
	topo, err := discoverTopology(ctx, rc.Addrs()[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer topo.close()
	if !topo.cluster || len(topo.shards) != 3 {
		t.Fatalf("cluster %v with %d shards, want a cluster of 3", topo.cluster, len(topo.shards))
	}
	pids := map[int]bool{}
	for _, n := range rc.Nodes {
		pids[n.PID()] = true
	}
	covered := 0
	for i, s := range topo.shards {
		if len(s.replicas) != 1 {
			t.Errorf("shard %d: %d replicas, want 1", i, len(s.replicas))
		}
		for _, n := range append([]*redisNode{s.master}, s.replicas...) {
			if !pids[n.pid] {
				t.Errorf("shard %d: node %s has pid %d, not one the cluster started", i, n.addr, n.pid)
			}
		}
		for _, r := range s.slots {
			covered += r[1] - r[0] + 1
		}
	}
	if covered != 16384 {
		t.Errorf("shards cover %d slots, want 16384", covered)
	}

	keys := stock.Keys{Prefix: "benchtopo"}
	before := map[string]float64{}
	if err := topo.commandCounts(ctx, before); err != nil {
		t.Fatal(err)
	}
	perShard := make([]int, 3)
	for iid := int64(1); iid <= 30; iid++ {
		key := keys.Item(7, iid)
		s, err := topo.shardOf(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		perShard[s]++
		// One script per key, sent to the master shardOf names: a wrong
		// shard answers MOVED.
		if err := topo.shards[s].master.cl.Eval(ctx, "return redis.call('SET', KEYS[1], ARGV[1])", []string{key},
			strconv.FormatInt(iid, 10)).Err(); err != nil {
			t.Fatalf("item %d on shard %d: %v", iid, s, err)
		}
	}
	after := map[string]float64{}
	if err := topo.commandCounts(ctx, after); err != nil {
		t.Fatal(err)
	}
	for i, n := range perShard {
		if n == 0 {
			t.Errorf("shard %d holds none of 30 items: their slots are not spread", i)
		}
		if got := after[scriptsKey(i)] - before[scriptsKey(i)]; got != float64(n) {
			t.Errorf("shard %d: %v scripts counted, want the %d sent to it", i, got, n)
		}
	}
}

// TestTopologyOfOneServer checks that a single Redis is one shard holding
// every slot, so -shards runs on it too.
func TestTopologyOfOneServer(t *testing.T) {
	r := cluster.NewRedis(t)
	ctx := context.Background()
	topo, err := discoverTopology(ctx, []string{r.Addr})
	if err != nil {
		t.Fatal(err)
	}
	defer topo.close()
	if topo.cluster || len(topo.shards) != 1 || topo.shards[0].master.pid != r.PID() {
		t.Fatalf("cluster %v, %d shards, master pid %d; want one shard on pid %d", topo.cluster, len(topo.shards),
			topo.shards[0].master.pid, r.PID())
	}
	if s, err := topo.shardOf(ctx, "any:{a:1:i:1}:item"); err != nil || s != 0 {
		t.Fatalf("shardOf = %d, %v; want 0", s, err)
	}
}

func TestCmdCalls(t *testing.T) {
	info := "# Commandstats\r\ncmdstat_eval:calls=3,usec=9,usec_per_call=3.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_evalsha:calls=120,usec=600,usec_per_call=5.00,rejected_calls=2,failed_calls=0\r\n" +
		"cmdstat_info:calls=7,usec=70,usec_per_call=10.00,rejected_calls=0,failed_calls=0\r\n"
	for cmd, want := range map[string]int64{"eval": 3, "evalsha": 120, "wait": 0} {
		if got := cmdCalls(info, cmd); got != want {
			t.Errorf("cmdCalls(%s) = %d, want %d", cmd, got, want)
		}
	}
}
