package stock

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Redis restarts and stale state.
//
// A Redis without persistence comes back empty: every item is missing and
// the buy script answers NOT_PUBLISHED until recovery rebuilds it. A Redis
// with an append-only file (fsync every second) comes back with state up to
// a second old: stock already sold to buyers who got their 202 looks
// available again. To never sell it twice, seckill records the run_id of the
// Redis server holding its state; whoever first sees a different run_id
// fences every published item (the buy script then refuses it, the gateway
// answers 503) and recovery rebuilds each from PostgreSQL, the system of
// record, once every accepted order has reached it.

// CheckRestart compares the Redis server's run_id with the recorded one and
// fences every item when they differ. It fences before recording the new
// run_id, so a caller that finds them equal knows the fencing is done. It
// returns whether it fenced.
func (s *Store) CheckRestart(ctx context.Context) (bool, error) {
	return checkRestart(ctx, s.rdb, s.keys)
}

// RestartHook is a go-redis OnConnect hook running CheckRestart on every new
// connection: after a restart every connection is new, so no buy reaches the
// restarted server before its items are fenced.
func RestartHook(keys Keys, log *slog.Logger) func(ctx context.Context, cn *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		fenced, err := checkRestart(ctx, cn, keys)
		if fenced {
			log.Warn("Redis restarted with persisted state that may be stale; items fenced until rebuilt from PostgreSQL")
		}
		return err
	}
}

type restartCmds interface {
	redis.Cmdable
	redis.Scripter
}

func checkRestart(ctx context.Context, c restartCmds, keys Keys) (bool, error) {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return false, fmt.Errorf("stock: redis server info: %w", err)
	}
	runID := infoField(info, "run_id")
	if runID == "" {
		return false, nil // not a server that reports run_id: nothing to compare
	}
	prev, err := c.Get(ctx, keys.RunID()).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("stock: recorded run_id: %w", err)
	}
	if prev == runID {
		return false, nil
	}
	fenced := false
	if prev != "" {
		members, err := c.SMembers(ctx, keys.Items()).Result()
		if err != nil {
			return false, fmt.Errorf("stock: list items: %w", err)
		}
		for _, m := range members {
			aid, iid, ok := parseItemRef(m)
			if !ok {
				continue
			}
			if err := fenceScript.Run(ctx, c, []string{keys.Item(aid, iid)}).Err(); err != nil {
				return false, fmt.Errorf("stock: fence item %s: %w", m, err)
			}
		}
		fenced = true
	}
	if err := c.Set(ctx, keys.RunID(), runID, 0).Err(); err != nil {
		return fenced, fmt.Errorf("stock: record run_id: %w", err)
	}
	return fenced, nil
}

// remember adds an item to the set CheckRestart fences.
func (s *Store) remember(ctx context.Context, aid, iid int64) error {
	ref := strconv.FormatInt(aid, 10) + ":" + strconv.FormatInt(iid, 10)
	if err := s.rdb.SAdd(ctx, s.keys.Items(), ref).Err(); err != nil {
		return fmt.Errorf("stock: record item %s: %w", ref, err)
	}
	return nil
}

func parseItemRef(s string) (aid, iid int64, ok bool) {
	a, i, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	aid, err1 := strconv.ParseInt(a, 10, 64)
	iid, err2 := strconv.ParseInt(i, 10, 64)
	return aid, iid, err1 == nil && err2 == nil
}

func infoField(info, field string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}
