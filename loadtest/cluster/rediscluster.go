package cluster

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClusterOptions configures a Redis Cluster.
type RedisClusterOptions struct {
	// Masters is the number of master nodes (at least 3, as redis-cli
	// --cluster create requires).
	Masters int
	// Replicas is the number of replicas per master.
	Replicas int
	// Dir holds one data folder per node, node-<port>.
	Dir string
	// LogDir, if set, receives one log per node, redis-<port>.log.
	LogDir string
	// Args are passed to every node after the cluster settings.
	Args []string
}

// RedisCluster is a Redis Cluster of Masters×(1+Replicas) redis-server
// processes on 127.0.0.1, every slot covered. Each node is a *Redis: kill,
// pause or restart one to fail it over.
type RedisCluster struct {
	Nodes []*Redis
	opts  RedisClusterOptions
}

// StartRedisCluster starts the nodes on free ports (≤ 55535: a node also
// listens on port+10000), waits for every PING, joins them with
// `redis-cli --cluster create`, and waits until every node reports
// cluster_state:ok and every replica's link to its master is up.
func StartRedisCluster(ctx context.Context, o RedisClusterOptions) (_ *RedisCluster, err error) {
	if o.Masters < 3 {
		return nil, fmt.Errorf("cluster: a Redis Cluster needs at least 3 masters, got %d", o.Masters)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli: %w: %v", ErrNotInstalled, err)
	}
	c := &RedisCluster{opts: o}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for range o.Masters * (1 + o.Replicas) {
		port, err := freeClusterPort()
		if err != nil {
			return nil, err
		}
		ro := RedisOptions{Dir: filepath.Join(o.Dir, "node-"+strconv.Itoa(port)), port: port,
			Args: append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
				"--cluster-node-timeout", "2000", "--appendonly", "yes",
				// Below the node timeout, so that a master given
				// min-replicas-to-write (in o.Args) stops taking writes
				// before its replica can be promoted (the default, 10s, is
				// longer than the node timeout).
				"--min-replicas-max-lag", "1"}, o.Args...)}
		if o.LogDir != "" {
			ro.LogPath = filepath.Join(o.LogDir, "redis-"+strconv.Itoa(port)+".log")
		}
		n, err := newRedis(ro)
		if err != nil {
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
		if err := n.Start(); err != nil {
			return nil, err
		}
	}
	for _, n := range c.Nodes {
		if err := waitProc(ctx, n.Proc, 20*time.Second, n.Ready); err != nil {
			return nil, err
		}
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(o.Replicas), "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	if err := c.WaitHealthy(ctx, 60*time.Second); err != nil {
		return nil, err
	}
	return c, nil
}

// NewRedisCluster starts a Redis Cluster private to the test; t.Cleanup
// kills every node.
func NewRedisCluster(t testing.TB, masters, replicas int) *RedisCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c, err := StartRedisCluster(ctx, RedisClusterOptions{Masters: masters, Replicas: replicas, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Addrs is every node's address, masters first as created.
func (c *RedisCluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr
	}
	return out
}

// Client returns a cluster client over every node; the caller closes it.
func (c *RedisCluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(),
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
}

// WaitHealthy waits until every running node reports cluster_state:ok,
// every running replica reports master_link_status:up, and every running
// node sees the same whole topology: Masters masters holding slots and every
// other running node a connected replica. cluster_state:ok alone comes
// before the replicas are known everywhere (CLUSTER SLOTS would still list
// a range with its master only).
func (c *RedisCluster) WaitHealthy(ctx context.Context, within time.Duration) error {
	var last string
	ok := WaitUntil(ctx, within, func(ctx context.Context) bool {
		running := 0
		for _, n := range c.Nodes {
			if n.Running() {
				running++
			}
		}
		for _, n := range c.Nodes {
			if !n.Running() {
				continue
			}
			if err := nodeHealthy(ctx, n); err != nil {
				last = err.Error()
				return false
			}
			if err := nodeSeesTopology(ctx, n, c.opts.Masters, running); err != nil {
				last = err.Error()
				return false
			}
		}
		return true
	})
	if !ok {
		return fmt.Errorf("cluster: Redis Cluster not healthy within %v: %s", within, last)
	}
	return nil
}

// nodeHealthy checks one node's CLUSTER INFO and, for a replica, INFO
// replication.
func nodeHealthy(ctx context.Context, n *Redis) error {
	cl := n.Client()
	defer cl.Close()
	info, err := cl.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", n.Addr, err)
	}
	if infoField(info, "cluster_state") != "ok" {
		return fmt.Errorf("%s: cluster_state %s", n.Addr, infoField(info, "cluster_state"))
	}
	repl, err := cl.Info(ctx, "replication").Result()
	if err != nil {
		return fmt.Errorf("%s: %w", n.Addr, err)
	}
	if infoField(repl, "role") == "slave" && infoField(repl, "master_link_status") != "up" {
		return fmt.Errorf("%s: master_link_status %s", n.Addr, infoField(repl, "master_link_status"))
	}
	return nil
}

// nodeSeesTopology checks n's CLUSTER NODES: masters nodes with slots, and
// running−masters replicas that are connected and not failed.
func nodeSeesTopology(ctx context.Context, n *Redis, masters, running int) error {
	cl := n.Client()
	defer cl.Close()
	out, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: %w", n.Addr, err)
	}
	var withSlots, replicas int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || strings.Contains(f[2], "fail") || f[7] != "connected" {
			continue
		}
		switch {
		case strings.Contains(f[2], "master") && len(f) > 8:
			withSlots++
		case strings.Contains(f[2], "slave"):
			replicas++
		}
	}
	if withSlots != masters || withSlots+replicas != running {
		return fmt.Errorf("%s: sees %d masters with slots and %d replicas, want %d and %d",
			n.Addr, withSlots, replicas, masters, running-masters)
	}
	return nil
}

// infoField reads one field of an INFO-style reply ("" if absent).
func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// Close kills every node.
func (c *RedisCluster) Close() {
	for _, n := range c.Nodes {
		_ = n.Kill()
	}
}
