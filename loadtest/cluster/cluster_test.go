package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
)

// TestRedisKillPauseRestart: a single server keeps its append-only data
// across kill -9 and a restart on the same port, and answers nothing while
// paused.
func TestRedisKillPauseRestart(t *testing.T) {
	r := cluster.NewRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	ctx := context.Background()
	c := r.Client()
	defer c.Close()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	pid := r.PID()
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	if r.Ready(ctx) {
		t.Error("a paused server answered PING")
	}
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	if !r.Ready(ctx) {
		t.Error("a resumed server does not answer PING")
	}
	if err := r.Kill(); err != nil {
		t.Fatal(err)
	}
	if r.Running() || r.Ready(ctx) {
		t.Fatal("still running after Kill")
	}
	if err := r.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if r.PID() == pid {
		t.Errorf("restart kept PID %d", pid)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("after restart: %q %v, want the appended value", v, err)
	}
}

// TestClusters starts a 3-master + 3-replica Redis Cluster and a 3-node
// NATS cluster: a key lands in every master's slot range and reaches its
// replica, a JetStream R3 stream accepts a message, and both stop cleanly.
func TestClusters(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 6 redis-servers and builds and starts 3 nats-servers")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	rc := cluster.NewRedisCluster(t, 3, 1)
	nc := cluster.NewNATSCluster(t, 3)

	client := rc.Client()
	defer client.Close()
	slots, err := client.ClusterSlots(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != 3 {
		t.Fatalf("%d slot ranges, want 3: %+v", len(slots), slots)
	}
	covered := 0
	for _, s := range slots {
		covered += s.End - s.Start + 1
		key := keyInSlots(s.Start, s.End)
		if err := client.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatalf("set %s (slots %d-%d): %v", key, s.Start, s.End, err)
		}
		master := redis.NewClient(&redis.Options{Addr: s.Nodes[0].Addr})
		if v, err := master.Get(ctx, key).Result(); err != nil || v != "v" {
			t.Errorf("master %s of slots %d-%d: %q %v", s.Nodes[0].Addr, s.Start, s.End, v, err)
		}
		if n, err := master.Do(ctx, "WAIT", 1, 5000).Int(); err != nil || n != 1 {
			t.Errorf("master %s: WAIT 1 replica: %d %v", s.Nodes[0].Addr, n, err)
		}
		master.Close()
	}
	if covered != 16384 {
		t.Errorf("the ranges cover %d slots, want 16384", covered)
	}
	// CLUSTER SLOTS lists a replica only once it reported a replication
	// offset (Redis 7 hides one that has received nothing yet): after the
	// writes above, within a few heartbeats.
	cluster.Eventually(t, 10*time.Second, func() error {
		slots, err := client.ClusterSlots(ctx).Result()
		if err != nil {
			return err
		}
		for _, s := range slots {
			if len(s.Nodes) != 2 {
				return fmt.Errorf("slots %d-%d served by %d nodes, want a master and a replica", s.Start, s.End, len(s.Nodes))
			}
		}
		return nil
	})

	conn, err := nats.Connect(nc.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "r3.x", []byte("hello"))
	if err != nil || ack.Sequence != 1 {
		t.Fatalf("publish to the R3 stream: %+v %v", ack, err)
	}

	rc.Close()
	nc.Close()
	for _, n := range rc.Nodes {
		if n.Running() {
			t.Errorf("%s still running after Close", n.Name)
		}
	}
	for _, n := range nc.Nodes {
		if n.Running() {
			t.Errorf("%s still running after Close", n.Name)
		}
	}
}

// keyInSlots returns a key whose hash slot is in [start, end].
func keyInSlots(start, end int) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("k%d", i)
		if s := int(crc16([]byte(k)) % 16384); s >= start && s <= end {
			return k
		}
	}
}

// crc16 is CRC-16/XMODEM, the hash of Redis Cluster's key slots.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
