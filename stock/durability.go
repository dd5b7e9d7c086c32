package stock

import (
	"fmt"
	"time"
)

// DurabilityMode says what makes an accepted buy survive the loss of a Redis
// master (see Durability).
type DurabilityMode string

const (
	// DurabilityFence relies on the shard checks alone (shards.go): a shard
	// that may have lost writes is fenced and rebuilt from PostgreSQL, so
	// nothing sells twice; a 202 is never lost either, since its order was
	// in the order stream before the answer. A master that is failed over
	// while still alive (paused, then resumed with a stale view) may accept
	// buys and restocks until it learns it was deposed, and they vanish when
	// it rejoins as a replica. Redis's min-replicas-to-write 1 narrows that
	// window only with min-replicas-max-lag below the cluster node timeout
	// (its default, 10s, is longer than a typical node timeout, so with
	// default settings it does not rule the case out); DurabilityReplica
	// does.
	DurabilityFence DurabilityMode = "fence"
	// DurabilityReplica adds, to every buy round trip and every restock
	// round trip, WAIT on each master it used: a buy whose master did not
	// confirm Durability.Replicas replicas within Durability.Timeout is not
	// handed on and fails with ErrNotReplicated; such a restock fails with
	// ErrNotReplicated and is retried by its caller.
	DurabilityReplica DurabilityMode = "replica"
)

// Durability configures how a buy is made durable.
type Durability struct {
	// Mode is DurabilityFence (also when empty) or DurabilityReplica.
	Mode DurabilityMode
	// Replicas is WAIT's numreplicas (DurabilityReplica); below 1 means 1.
	Replicas int
	// Timeout is WAIT's timeout (DurabilityReplica); 0 means 50ms.
	Timeout time.Duration
}

// ParseDurability maps the redis.durability setting to a mode: "auto" is
// DurabilityReplica on a Redis Cluster and DurabilityFence on a single
// Redis.
func ParseDurability(setting string, cluster bool) (DurabilityMode, error) {
	switch setting {
	case "", "auto":
		if cluster {
			return DurabilityReplica, nil
		}
		return DurabilityFence, nil
	case string(DurabilityFence):
		return DurabilityFence, nil
	case string(DurabilityReplica):
		return DurabilityReplica, nil
	}
	return "", fmt.Errorf("stock: durability %q: want auto, fence or replica", setting)
}

func (d Durability) replica() bool { return d.Mode == DurabilityReplica }

func (d Durability) waitArgs() (int, time.Duration) {
	n, t := d.Replicas, d.Timeout
	if n < 1 {
		n = 1
	}
	if t <= 0 {
		t = 50 * time.Millisecond
	}
	return n, t
}

// Durability returns the store's durability setting.
func (s *Store) Durability() Durability { return s.dur }
