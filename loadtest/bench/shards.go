package main

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisNode is one redis-server whose CPU time and command counts the bench
// reads. It runs on this machine: its PID comes from INFO server.
type redisNode struct {
	addr string
	pid  int
	cl   *redis.Client // a direct connection, for INFO and CLUSTER
}

// shard is one master, its replicas and the slots it serves. A single Redis
// is one shard holding every slot.
type shard struct {
	master   *redisNode
	replicas []*redisNode
	slots    [][2]int // inclusive ranges
}

// topology is the Redis the gateway talks to, as the bench reads it once at
// the start (the bench injects no faults, so it does not change).
type topology struct {
	cluster bool
	shards  []*shard
}

// discoverTopology reads the topology from the first of addrs: CLUSTER
// NODES when it is a cluster node, else that one server as the only shard.
// CLUSTER NODES, not CLUSTER SLOTS: the latter leaves out a replica until
// gossip has told its node the replica's offset, which can be after the
// cluster reports itself healthy.
func discoverTopology(ctx context.Context, addrs []string) (*topology, error) {
	seed, err := dialNode(ctx, addrs[0])
	if err != nil {
		return nil, err
	}
	info, err := seed.cl.Info(ctx, "cluster").Result()
	if err != nil {
		seed.cl.Close()
		return nil, err
	}
	if infoInt(info, "cluster_enabled") != 1 {
		return &topology{shards: []*shard{{master: seed, slots: [][2]int{{0, 16383}}}}}, nil
	}
	defer seed.cl.Close()
	out, err := seed.cl.ClusterNodes(ctx).Result()
	if err != nil {
		return nil, err
	}
	t := &topology{cluster: true}
	byMaster := map[string]*shard{}
	type replica struct{ addr, master string }
	var replicas []replica
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		// <id> <ip:port@cport[,hostname]> <flags> <master id|-> <ping> <pong> <epoch> <link> <slot>...
		f := strings.Fields(line)
		if len(f) < 8 || strings.Contains(f[2], "fail") || strings.Contains(f[2], "handshake") || strings.Contains(f[2], "noaddr") {
			continue
		}
		addr, _, _ := strings.Cut(f[1], "@")
		switch {
		case strings.Contains(f[2], "master") && len(f) > 8:
			s := &shard{}
			for _, r := range f[8:] {
				if strings.HasPrefix(r, "[") {
					continue // a slot being migrated
				}
				lo, hi, ok := strings.Cut(r, "-")
				if !ok {
					hi = lo
				}
				a, err1 := strconv.Atoi(lo)
				b, err2 := strconv.Atoi(hi)
				if err1 != nil || err2 != nil {
					t.close()
					return nil, fmt.Errorf("cluster nodes: slot range %q", r)
				}
				s.slots = append(s.slots, [2]int{a, b})
			}
			if len(s.slots) == 0 {
				continue // every slot of it on the move: it serves none yet
			}
			if s.master, err = dialNode(ctx, addr); err != nil {
				t.close()
				return nil, err
			}
			byMaster[f[0]] = s
			t.shards = append(t.shards, s)
		case strings.Contains(f[2], "slave"):
			replicas = append(replicas, replica{addr, f[3]})
		}
	}
	for _, r := range replicas {
		s := byMaster[r.master]
		if s == nil {
			continue // the replica of a master without slots
		}
		n, err := dialNode(ctx, r.addr)
		if err != nil {
			t.close()
			return nil, err
		}
		s.replicas = append(s.replicas, n)
	}
	for _, s := range t.shards {
		sort.Slice(s.slots, func(i, j int) bool { return s.slots[i][0] < s.slots[j][0] })
		sort.Slice(s.replicas, func(i, j int) bool { return s.replicas[i].addr < s.replicas[j].addr })
	}
	sort.Slice(t.shards, func(i, j int) bool { return t.shards[i].slots[0][0] < t.shards[j].slots[0][0] })
	return t, nil
}

func dialNode(ctx context.Context, addr string) (*redisNode, error) {
	cl := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 2})
	info, err := cl.Info(ctx, "server").Result()
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	pid := infoInt(info, "process_id")
	if pid <= 0 {
		cl.Close()
		return nil, fmt.Errorf("redis %s: INFO server has no process_id", addr)
	}
	return &redisNode{addr: addr, pid: pid, cl: cl}, nil
}

func (t *topology) close() {
	for _, s := range t.shards {
		for _, n := range append([]*redisNode{s.master}, s.replicas...) {
			if n != nil {
				n.cl.Close()
			}
		}
	}
}

// shardOf returns the index of the shard serving key (CLUSTER KEYSLOT, asked
// of the server so the bench needs no copy of the hash-tag rule).
func (t *topology) shardOf(ctx context.Context, key string) (int, error) {
	if !t.cluster {
		return 0, nil
	}
	slot, err := t.shards[0].master.cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return 0, err
	}
	for i, s := range t.shards {
		for _, r := range s.slots {
			if int(slot) >= r[0] && int(slot) <= r[1] {
				return i, nil
			}
		}
	}
	return 0, fmt.Errorf("slot %d of %s: no shard serves it", slot, key)
}

// watch adds every node's PID to w: "redis" for a single server (the
// column the main table has), else redis/m<i> and redis/r<i>.<j>.
func (t *topology) watch(w map[string]int) map[string]int {
	if !t.cluster {
		w["redis"] = t.shards[0].master.pid
		return w
	}
	for i, s := range t.shards {
		w[masterName(i)] = s.master.pid
		for j, r := range s.replicas {
			w[replicaName(i, j)] = r.pid
		}
	}
	return w
}

func masterName(i int) string {
	return "redis/m" + strconv.Itoa(i)
}

func replicaName(i, j int) string {
	return "redis/r" + strconv.Itoa(i) + "." + strconv.Itoa(j)
}

// masterName returns the CPU sample name of shard i's master.
func (t *topology) masterName(i int) string {
	if !t.cluster {
		return "redis"
	}
	return masterName(i)
}

// scriptsKey and waitsKey name a shard's counters in a probe's sample.
func scriptsKey(i int) string { return "scripts/" + strconv.Itoa(i) }
func waitsKey(i int) string   { return "waits/" + strconv.Itoa(i) }

// commandCounts adds each master's script calls (EVALSHA + EVAL) and WAIT
// calls so far to out (INFO commandstats).
func (t *topology) commandCounts(ctx context.Context, out map[string]float64) error {
	for i, s := range t.shards {
		info, err := s.master.cl.Info(ctx, "commandstats").Result()
		if err != nil {
			return fmt.Errorf("redis %s: %w", s.master.addr, err)
		}
		out[scriptsKey(i)] = float64(cmdCalls(info, "evalsha") + cmdCalls(info, "eval"))
		out[waitsKey(i)] = float64(cmdCalls(info, "wait"))
	}
	return nil
}

// totalCalls is every master's command count (INFO commandstats), INFO
// itself left out.
func (t *topology) totalCalls(ctx context.Context) (int64, error) {
	var total int64
	for _, s := range t.shards {
		info, err := s.master.cl.Info(ctx, "commandstats").Result()
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(info, "\n") {
			name, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
			if !ok {
				continue
			}
			if name, _, _ = strings.Cut(name, ":"); name != "info" {
				total += cmdCalls(info, name)
			}
		}
	}
	return total, nil
}

// cmdCalls reads calls= of cmdstat_<cmd> in an INFO commandstats reply (0
// if the command was never called).
func cmdCalls(info, cmd string) int64 {
	for _, line := range strings.Split(info, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_"+cmd+":")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(kv, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				return n
			}
		}
	}
	return 0
}
