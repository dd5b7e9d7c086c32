package stock

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/seckill/seckill/stock/lifecycle"
)

// SemaphoreConfig configures a distributed semaphore.
type SemaphoreConfig struct {
	// Name identifies the semaphore; every process using the same Name (and
	// Keys prefix) shares one Capacity.
	Name string
	// Capacity is the most permits outstanding across all processes, 1..2^31-1.
	Capacity int64
	// Block is how many permits a process leases from Redis at a time; larger
	// blocks mean fewer Redis calls but more permits parked in idle processes.
	// ≤ 0 means Capacity/16 (at least 1); more than Capacity means Capacity.
	Block int64
	// TTL is the lease: a process that stops renewing loses its permits this
	// long after its last renewal. Renewal runs every TTL/3. Default 10s.
	TTL time.Duration
	// Holder names this process in Redis and must be unique per process;
	// a random one is made when empty.
	Holder string
}

// Semaphore caps in-flight work (buys) across all gateway processes.
//
// Each process leases permits from Redis in blocks and hands them out locally:
// Acquire's fast path is one CAS on a word packing held<<32 | inUse, so the
// per-request cost is local and lock-free. Only when the local block is used
// up does Acquire go to Redis, serialised so one process has at most one
// lease call in flight. Run renews the lease every TTL/3 and gives back blocks
// no longer in use; Redis purges holders whose lease deadline (server time)
// passed, so a crashed process's permits come back by themselves.
//
// Local invariant: held never exceeds what Redis records for this holder
// (Redis grows first, then local; local shrinks first, then Redis), so the
// only way past Capacity is a lease that lapsed while its permits were in use.
type Semaphore struct {
	rdb             redis.UniversalClient
	holders, leases string
	holder          string
	capacity, block int64
	ttl             time.Duration
	base            time.Time // monotonic origin for the ns timestamps below

	state  atomic.Uint64 // held<<32 | inUse
	busyAt atomic.Int64  // ns since base when a lease call that found the semaphore full was sent

	lock      chan struct{} // one slot: serialises lease changes, waitable with a ctx
	renewedAt int64         // ns since base the last lease-extending call was sent; guarded by lock
	closed    bool          // guarded by lock
}

// NewSemaphore returns a semaphore holding no permits yet. It panics on a
// config no deployment could mean (empty Name, Capacity out of range).
func NewSemaphore(rdb redis.UniversalClient, keys Keys, cfg SemaphoreConfig) *Semaphore {
	if cfg.Name == "" || cfg.Capacity < 1 || cfg.Capacity >= 1<<31 {
		panic(fmt.Sprintf("stock: invalid semaphore config: name %q, capacity %d", cfg.Name, cfg.Capacity))
	}
	if cfg.Block <= 0 {
		cfg.Block = max(1, cfg.Capacity/16)
	}
	cfg.Block = min(cfg.Block, cfg.Capacity)
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Holder == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		cfg.Holder = "h-" + hex.EncodeToString(b)
	}
	s := &Semaphore{
		rdb:      rdb,
		holders:  keys.SemaphoreHolders(cfg.Name),
		leases:   keys.SemaphoreLeases(cfg.Name),
		holder:   cfg.Holder,
		capacity: cfg.Capacity,
		block:    cfg.Block,
		ttl:      cfg.TTL,
		base:     time.Now(),
		lock:     make(chan struct{}, 1),
	}
	s.busyAt.Store(-1)
	return s
}

const inUseMask = 1<<32 - 1

// Held returns the permits this process has leased from Redis.
func (s *Semaphore) Held() int64 { return int64(s.state.Load() >> 32) }

// InUse returns the permits this process has handed out and not yet released.
func (s *Semaphore) InUse() int64 { return int64(s.state.Load() & inUseMask) }

// Acquire takes one permit. The returned release gives it back; it is safe to
// call more than once (later calls do nothing). When every permit of the
// global capacity is out, Acquire returns ErrBusy; a Redis failure comes back
// wrapped, never as ErrBusy.
func (s *Semaphore) Acquire(ctx context.Context) (release func(), err error) {
	if s.takeLocal() {
		return s.releaser(), nil
	}
	return s.acquireSlow(ctx)
}

// takeLocal takes a permit from the leased block if one is spare.
func (s *Semaphore) takeLocal() bool {
	for {
		st := s.state.Load()
		if st&inUseMask >= st>>32 {
			return false
		}
		if s.state.CompareAndSwap(st, st+1) {
			return true
		}
	}
}

func (s *Semaphore) releaser() func() {
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			s.state.Add(^uint64(0)) // inUse-1; inUse > 0 here, so no borrow into held
		}
	}
}

// acquireSlow leases another block from Redis, one caller at a time.
func (s *Semaphore) acquireSlow(ctx context.Context) (func(), error) {
	waitFrom := s.since()
	if err := s.lockCtx(ctx); err != nil {
		return nil, err
	}
	defer s.unlock()
	if s.closed {
		return nil, ErrClosed
	}
	for {
		if s.takeLocal() {
			return s.releaser(), nil
		}
		// While this caller queued, another found the semaphore full: share
		// that answer instead of asking Redis once per queued caller.
		if s.busyAt.Load() >= waitFrom {
			return nil, ErrBusy
		}
		sent := s.since()
		v, err := semAcquireScript.Run(ctx, s.rdb, []string{s.holders, s.leases},
			s.holder, s.block, s.capacity, s.ttl.Milliseconds()).Result()
		if err != nil {
			return nil, fmt.Errorf("stock: semaphore lease: %w", err)
		}
		r, err := replyInts("sem_acquire", v, 2)
		if err != nil {
			return nil, err
		}
		s.setHeld(r[1])
		if r[0] == 0 {
			s.busyAt.Store(sent)
			return nil, ErrBusy
		}
		s.renewedAt = sent
	}
}

// RunOnce renews the lease and gives back whole blocks no longer in use. If
// Redis reports the lease had expired, held is reset to what could be leased
// afresh. If renewals fail for longer than the lease can be trusted (TTL less
// a fifth for clock and latency), the local permits stop being handed out.
func (s *Semaphore) RunOnce(ctx context.Context) error {
	if err := s.lockCtx(ctx); err != nil {
		return err
	}
	defer s.unlock()
	if s.closed {
		return nil
	}
	// Shrink locally first so the fast path cannot use what Redis is about
	// to take back.
	var want int64
	for {
		st := s.state.Load()
		held, inUse := int64(st>>32), int64(st&inUseMask)
		want = (inUse + s.block - 1) / s.block * s.block
		if s.state.CompareAndSwap(st, uint64(min(held, want))<<32|uint64(inUse)) {
			break
		}
	}
	sent := s.since()
	v, err := semRenewScript.Run(ctx, s.rdb, []string{s.holders, s.leases},
		s.holder, want, s.capacity, s.ttl.Milliseconds()).Result()
	if err != nil {
		if s.since()-s.renewedAt > int64(s.ttl-s.ttl/5) {
			s.setHeld(0)
		}
		return fmt.Errorf("stock: semaphore renew: %w", err)
	}
	r, err := replyInts("sem_renew", v, 2)
	if err != nil {
		return err
	}
	s.setHeld(r[0])
	s.renewedAt = sent
	return nil
}

// Service renews the lease every TTL/3 (RunOnce) while it runs. Stopping it
// does not give the permits back: call Close after it stopped (and after
// the HTTP server stopped handing out work).
func (s *Semaphore) Service(log *slog.Logger) *lifecycle.Service {
	return lifecycle.New(lifecycle.Config{Name: "stock.semaphore", Every: s.ttl / 3, Log: log}, s.RunOnce)
}

// Close gives back every permit this process leased; later Acquires that
// need Redis fail with ErrClosed. Permits still in use may be released as usual.
func (s *Semaphore) Close(ctx context.Context) error {
	if err := s.lockCtx(ctx); err != nil {
		return err
	}
	defer s.unlock()
	s.closed = true
	s.setHeld(0)
	if err := semReleaseScript.Run(ctx, s.rdb, []string{s.holders, s.leases}, s.holder).Err(); err != nil {
		return fmt.Errorf("stock: semaphore release: %w", err)
	}
	return nil
}

// setHeld replaces held, keeping inUse as it is at that instant.
func (s *Semaphore) setHeld(held int64) {
	for {
		st := s.state.Load()
		if s.state.CompareAndSwap(st, uint64(held)<<32|st&inUseMask) {
			return
		}
	}
}

func (s *Semaphore) since() int64 { return int64(time.Since(s.base)) }

func (s *Semaphore) lockCtx(ctx context.Context) error {
	select {
	case s.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stock: semaphore: %w", ctx.Err())
	}
}

func (s *Semaphore) unlock() { <-s.lock }
