package stocktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/stock"
)

// The shared Redis Cluster: 3 masters with a replica each, started by the
// first test that asks for it and stopped by Main when the package's tests
// are done. Tests share it as they share the single Redis, each under a key
// prefix of its own; a test that kills or pauses a node starts a cluster of
// its own (NewPrivateCluster).
var shared struct {
	once sync.Once
	c    *cluster.RedisCluster
	dir  string
	err  error
}

// Main runs a test package's tests and then stops the shared Redis Cluster
// if one was started. Call it from TestMain: os.Exit(stocktest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	return code
}

// sharedCluster starts the shared cluster once.
func sharedCluster(t testing.TB) *cluster.RedisCluster {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "stocktest-cluster-")
		if shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.c, shared.err = cluster.StartRedisCluster(ctx, cluster.RedisClusterOptions{
			Masters: 3, Replicas: 1, Dir: shared.dir, Args: []string{"--cluster-require-full-coverage", "no"}})
	})
	if shared.err != nil {
		t.Fatalf("stocktest: start the shared Redis Cluster: %v", shared.err)
	}
	return shared.c
}

// NewCluster is New on the shared Redis Cluster (3 masters, 3 replicas;
// started on first use, stopped by Main): a cluster client and a Keys whose
// prefix is unique to this test, its keys deleted on every master at the
// end.
func NewCluster(t testing.TB) (*redis.ClusterClient, stock.Keys) {
	t.Helper()
	c := sharedCluster(t)
	return clusterClient(t, c.Addrs())
}

// NewPrivateCluster starts a Redis Cluster of 3 masters with a replica
// each, private to the test (t.Cleanup kills it): for tests that kill,
// pause or fail over a node. It returns the cluster, a client over it and
// a Keys prefix.
//
// Its nodes run with cluster-require-full-coverage no, as seckill's clusters
// should: a master that is down stops only its own slots, not the whole
// cluster, so the items of other shards keep selling through a failover.
func NewPrivateCluster(t testing.TB) (*cluster.RedisCluster, *redis.ClusterClient, stock.Keys) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := cluster.StartRedisCluster(ctx, cluster.RedisClusterOptions{Masters: 3, Replicas: 1, Dir: t.TempDir(),
		Args: []string{"--cluster-require-full-coverage", "no"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	rdb, keys := clusterClient(t, c.Addrs())
	return c, rdb, keys
}

func clusterClient(t testing.TB, addrs []string) (*redis.ClusterClient, stock.Keys) {
	t.Helper()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, Protocol: 2,
		DialTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second})
	keys := newKeys()
	t.Cleanup(func() {
		defer rdb.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// Best effort: a test may have left a master down on purpose.
		_ = rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return deletePrefix(ctx, m, keys.Prefix)
		})
	})
	return rdb, keys
}

func newKeys() stock.Keys {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return stock.Keys{Prefix: "t" + hex.EncodeToString(b)}
}

// Topology names a Redis deployment the tests run against.
type Topology string

const (
	// Single is one Redis server (New).
	Single Topology = "single"
	// Cluster is the shared Redis Cluster (NewCluster).
	Cluster Topology = "cluster"
)

// Topologies lists every topology, single first.
var Topologies = []Topology{Single, Cluster}

// ForEachTopology runs fn as a parallel subtest per topology, "single" and
// "cluster", each with a client and a Keys of its own (New, NewCluster).
func ForEachTopology(t *testing.T, fn func(t *testing.T, rdb redis.UniversalClient, keys stock.Keys)) {
	t.Helper()
	for _, top := range Topologies {
		t.Run(string(top), func(t *testing.T) {
			t.Parallel()
			rdb, keys := Open(t, top)
			fn(t, rdb, keys)
		})
	}
}

// Open returns a client and Keys on topology top.
func Open(t testing.TB, top Topology) (redis.UniversalClient, stock.Keys) {
	t.Helper()
	switch top {
	case Single:
		return New(t)
	case Cluster:
		return NewCluster(t)
	}
	panic(fmt.Sprintf("stocktest: unknown topology %q", top))
}
