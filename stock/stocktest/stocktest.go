// Package stocktest gives tests a real Redis of their own, the way httptest
// gives them a server: every test gets a key prefix no other test uses, so
// tests run in parallel against one Redis and clean up after themselves.
// The same goes for a Redis Cluster (NewCluster: 3 masters and 3 replicas
// shared by a package's tests, stopped by Main), and ForEachTopology runs a
// test on both; NewPrivateCluster and StartServer give a test servers it may
// kill, pause or restart.
package stocktest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock"
)

// AddrEnv names the environment variable holding the test Redis address.
const AddrEnv = "SECKILL_TEST_REDIS_ADDR"

// DefaultAddr is the test Redis address used when AddrEnv is unset.
const DefaultAddr = "127.0.0.1:6379"

// Addr returns the test Redis address: $SECKILL_TEST_REDIS_ADDR or DefaultAddr.
func Addr() string {
	if a := os.Getenv(AddrEnv); a != "" {
		return a
	}
	return DefaultAddr
}

// New returns a client to the test Redis and a Keys whose prefix ("t" and 16
// random hex digits) is unique to this test. The test fails at once if Redis
// does not answer. t.Cleanup deletes every key under the prefix (SCAN + DEL)
// and closes the client.
func New(t testing.TB) (redis.UniversalClient, stock.Keys) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: Addr()})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		t.Fatalf("stocktest: test Redis at %s (set %s): %v", Addr(), AddrEnv, err)
	}
	keys := newKeys()
	t.Cleanup(func() {
		defer rdb.Close()
		if err := deletePrefix(context.Background(), rdb, keys.Prefix); err != nil {
			t.Errorf("stocktest: clean up keys %s:*: %v", keys.Prefix, err)
		}
	})
	return rdb, keys
}

// deletePrefix deletes every key under prefix on one server (on a cluster,
// it is called per master). The keys of one test sit in different cluster
// slots, so they are unlinked one key per command, all pipelined in one
// round trip.
func deletePrefix(ctx context.Context, rdb redis.Cmdable, prefix string) error {
	var keys []string
	iter := rdb.Scan(ctx, 0, prefix+":*", 500).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		return err
	}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Unlink(ctx, k)
		}
		return nil
	})
	return err
}
