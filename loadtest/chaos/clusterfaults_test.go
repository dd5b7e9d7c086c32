package chaos

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/loadtest/scenario"
	"github.com/seckill/seckill/stock"
)

// TestClusterFaults injects the cluster topology's Redis and NATS faults on
// clusters of its own, without seckill: the master of an item's shard is
// found, killed and replaced by its replica (which kept the item), restarted
// as a replica, frozen until failed over and resumed as a replica; the
// orders stream's leader is killed and the stream gets another. Opt-in like
// TestChaosShort (it starts 6 redis-servers and 3 nats-servers).
func TestClusterFaults(t *testing.T) {
	if os.Getenv("SECKILL_CHAOS") != "1" {
		t.Skip("set SECKILL_CHAOS=1 to run the cluster faults on clusters of their own (~30 s)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cfg, err := parseChaosFlags([]string{"--short", "--topology", "cluster", "--out", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cr := &chaosRun{cfg: cfg, stderr: cluster.TestLog(t), began: time.Now(),
		cl: &stack{redisCluster: cluster.NewRedisCluster(t, 3, 1), natsCluster: cluster.NewNATSCluster(t, 3)}}
	goRedisLog.to(io.Discard) // a failed dial per read while the master is down
	rc := cr.cl.redisReader()
	defer rc.Close()
	cr.rdb = rc
	act := scenario.Activity{ID: 7, ItemID: 70}
	cr.r = &scenario.Session{Act: act}
	item := stock.Keys{Prefix: cfg.Load.RedisPrefix}.Item(act.ID, act.ItemID)

	shard, err := cr.shardOf(ctx, act)
	if err != nil || shard == "" {
		t.Fatalf("shardOf: %q, %v", shard, err)
	}
	m, repl, err := cr.slotNodes(ctx, cr.cs.slot)
	if err != nil || repl == nil {
		t.Fatalf("slotNodes: %v, replica %v", err, repl)
	}
	// The item on its master, and on the replica before the kill.
	mc := m.Client()
	if err := mc.HSet(ctx, item, "stock", 10).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := mc.Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d, %v", n, err)
	}
	mc.Close()
	stockIs10 := func() error {
		v, err := rc.HGet(ctx, item, "stock").Result()
		if err == nil && v != "10" {
			t.Fatalf("item stock %q after the failover, want 10", v)
		}
		return err
	}

	run := func(k faultKind, inject func(context.Context, *fault)) *fault {
		f := &fault{kind: k, name: k.String(), due: time.Now()}
		cr.faults = append(cr.faults, f)
		inject(ctx, f)
		if f.err != nil {
			t.Fatalf("%s: %v", f.name, f.err)
		}
		if f.back.IsZero() {
			t.Fatalf("%s: never back", f.name)
		}
		t.Logf("%s: %s", f.name, f.note)
		return f
	}

	f := run(faultRedisKill, cr.killMaster)
	if f.failover <= 0 || m.Running() {
		t.Fatalf("kill: failover %v, old master running %v", f.failover, m.Running())
	}
	if nm, _, err := cr.slotNodes(ctx, cr.cs.slot); err != nil || nm != repl {
		t.Fatalf("after the kill the slot is served by %v (%v), want the replica %s", nm, err, repl.Addr)
	}
	cluster.Eventually(t, 10*time.Second, stockIs10)

	run(faultRedisRejoin, cr.rejoinMaster)
	if ok, _ := replicaLinked(ctx, m); !ok {
		t.Fatalf("%s is not a linked replica after the rejoin", m.Addr)
	}

	f = run(faultRedisPause, cr.pauseMaster)
	if f.failover < 2*time.Second {
		t.Errorf("paused master failed over after %v, under the 2 s node timeout", f.failover)
	}
	// The others clear the resumed node's FAIL flag once it answers as a replica.
	cluster.Eventually(t, 10*time.Second, func() error {
		nm, nr, err := cr.slotNodes(ctx, cr.cs.slot)
		if err == nil && (nm != m || nr != repl) {
			err = fmt.Errorf("master %v, replica %v; want %s, %s", nm, nr, m.Addr, repl.Addr)
		}
		return err
	})
	cluster.Eventually(t, 10*time.Second, stockIs10)

	// NATS: an R3 orders stream, its leader killed and restarted.
	nc, err := nats.Connect(cr.cl.natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: ordersStream, Subjects: []string{"seckill.orders"},
		Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	leader, err := cr.streamLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run(faultNATSNode, cr.killNATSLeader)
	cluster.Eventually(t, 30*time.Second, func() error {
		_, err := js.Publish(ctx, "seckill.orders", []byte("after"))
		return err
	})
	if now, err := cr.streamLeader(ctx); err != nil || now == "" {
		t.Fatalf("stream leader after the kill of %s: %q, %v", leader, now, err)
	}
	cr.wg.Wait()
}
