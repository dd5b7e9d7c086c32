package stock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/bwmarrin/snowflake"
	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock/lifecycle"
)

// NodeCount is the number of Snowflake node ids: bwmarrin/snowflake's default
// 10 node bits, which seckill never changes.
const NodeCount = 1024

// NodeLease is a Snowflake node id leased from Redis, so no two live processes
// mint ids with the same node bits.
//
// The lease is trusted locally until the time the last successful renewal was
// sent plus TTL, less a safety margin of TTL/5 for latency and clock rate
// drift; Redis expires the key no earlier than that. A lease that is not valid
// mints no ids, so a process cut off from Redis stops before another process
// can take its node id.
type NodeLease struct {
	rdb    redis.UniversalClient
	key    string
	holder string
	id     int64
	ttl    time.Duration
	node   *snowflake.Node
	base   time.Time // monotonic origin for validUntil

	validUntil atomic.Int64 // ns since base; the lease is valid strictly before
	lost       atomic.Bool  // Redis said another holder has it, or Release ran
}

// AcquireNode leases a free node id for holder (unique per process): it tries
// SET NX PX ttl on each id, starting at a random one so that starting
// processes spread out, and walks all NodeCount. ErrNoFreeNode when every id
// is taken. Run must then renew the lease every ttl/3.
func AcquireNode(ctx context.Context, rdb redis.UniversalClient, keys Keys, holder string, ttl time.Duration) (*NodeLease, error) {
	if holder == "" || ttl <= 0 {
		return nil, fmt.Errorf("stock: acquire node: holder %q and ttl %v must be set", holder, ttl)
	}
	base := time.Now()
	start := rand.Int64N(NodeCount)
	for i := range int64(NodeCount) {
		n := (start + i) % NodeCount
		sent := time.Since(base)
		ok, err := rdb.SetNX(ctx, keys.Node(n), holder, ttl).Result()
		if err != nil {
			return nil, fmt.Errorf("stock: acquire node id %d: %w", n, err)
		}
		if !ok {
			continue
		}
		node, err := snowflake.NewNode(n)
		if err != nil {
			return nil, fmt.Errorf("stock: snowflake node %d: %w", n, err)
		}
		l := &NodeLease{rdb: rdb, key: keys.Node(n), holder: holder, id: n, ttl: ttl, node: node, base: base}
		l.validUntil.Store(int64(sent + ttl - ttl/5))
		return l, nil
	}
	return nil, ErrNoFreeNode
}

// ID returns the leased node id, 0..NodeCount-1.
func (l *NodeLease) ID() int64 { return l.id }

// Valid reports whether ids may be minted now.
func (l *NodeLease) Valid() bool {
	return !l.lost.Load() && int64(time.Since(l.base)) < l.validUntil.Load()
}

// NextID returns a new Snowflake id, or ErrLeaseLost if the lease is not valid.
func (l *NodeLease) NextID() (int64, error) {
	if !l.Valid() {
		return 0, ErrLeaseLost
	}
	return l.node.Generate().Int64(), nil
}

// RunOnce renews the lease (compare-and-pexpire). A key that is gone (Redis
// restarted empty) is taken again, since nobody holds it; a key that holds
// another holder marks the lease lost for good and returns ErrLeaseLost. A
// Redis error leaves the lease to lapse at its local deadline.
func (l *NodeLease) RunOnce(ctx context.Context) error {
	if l.lost.Load() {
		return ErrLeaseLost
	}
	sent := time.Since(l.base)
	ok, err := nodeRenewScript.Run(ctx, l.rdb, []string{l.key}, l.holder, l.ttl.Milliseconds()).Int64()
	if err != nil {
		return fmt.Errorf("stock: renew node id %d: %w", l.id, err)
	}
	if ok == 0 {
		l.lost.Store(true)
		return ErrLeaseLost
	}
	l.validUntil.Store(int64(sent + l.ttl - l.ttl/5))
	return nil
}

// Service renews the lease every ttl/3 (RunOnce) while it runs. Losing the
// lease halts it: its Run and Err then report ErrLeaseLost, so the caller
// can stop serving or acquire a new node id.
func (l *NodeLease) Service(log *slog.Logger) *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "stock.nodeid/" + strconv.FormatInt(l.id, 10), Every: l.ttl / 3, Log: log},
		func(ctx context.Context) error {
			err := l.RunOnce(ctx)
			if errors.Is(err, ErrLeaseLost) {
				return lifecycle.Halt(err)
			}
			return err
		})
}

// Release stops minting ids at once and frees the node id if this holder
// still has it (compare-and-delete); another holder's key is left alone.
func (l *NodeLease) Release(ctx context.Context) error {
	l.lost.Store(true)
	if err := nodeReleaseScript.Run(ctx, l.rdb, []string{l.key}, l.holder).Err(); err != nil {
		return fmt.Errorf("stock: release node id %d: %w", l.id, err)
	}
	return nil
}
