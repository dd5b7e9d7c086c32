package chaos

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
)

// redisServer is the chaos run's own redis-server with an append-only file
// fsynced every second, and a sampler of that file's size, so a kill -9 can
// be followed by what a host crash would lose: the writes of the last second,
// still in the page cache when only the process dies.
type redisServer struct {
	*cluster.Redis

	mu      sync.Mutex
	samples []aofSample // the last few seconds, oldest first
}

type aofSample struct {
	at   time.Time
	file string
	size int64
}

// startRedisServer starts a redis-server on a free port with its data
// folder under dir.
func startRedisServer(ctx context.Context, dir, logPath string) (*redisServer, error) {
	r, err := cluster.StartRedis(ctx, cluster.RedisOptions{Dir: filepath.Join(dir, "redis"), LogPath: logPath,
		Args: []string{"--appendonly", "yes", "--appendfsync", "everysec",
			// One incremental AOF file for the whole run, so the size samples
			// always describe the file that gets cut.
			"--auto-aof-rewrite-percentage", "0"}})
	if err != nil {
		return nil, err
	}
	return &redisServer{Redis: r}, nil
}

// sample runs until ctx ends, recording the incremental AOF file's size every
// 50 ms.
func (r *redisServer) sample(ctx context.Context) {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if file := r.incrAOF(); file != "" {
			if st, err := os.Stat(file); err == nil {
				r.mu.Lock()
				r.samples = append(r.samples, aofSample{at: time.Now(), file: file, size: st.Size()})
				if len(r.samples) > 200 { // 10 s
					r.samples = append(r.samples[:0], r.samples[len(r.samples)-100:]...)
				}
				r.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// incrAOF is the incremental AOF file the manifest names ("" if none yet).
func (r *redisServer) incrAOF() string {
	dir := filepath.Join(r.Dir, "appendonlydir")
	f, err := os.Open(filepath.Join(dir, "appendonly.aof.manifest"))
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text()) // file <name> seq <n> type <b|h|i>
		if len(fields) >= 6 && fields[0] == "file" && fields[5] == "i" {
			last = fields[1]
		}
	}
	if last == "" {
		return ""
	}
	return filepath.Join(dir, last)
}

// aofCut is what dropTail removed.
type aofCut struct {
	bytes  int64         // removed from the end of the file
	window time.Duration // how much time of writes that was (kill − sample)
}

// dropTail cuts the AOF (the process must be dead) back to its size at the
// newest sample taken at least lose before killedAt: the un-fsynced second a
// host crash loses under appendfsync everysec.
func (r *redisServer) dropTail(killedAt time.Time, lose time.Duration) (aofCut, error) {
	if lose <= 0 {
		return aofCut{}, nil
	}
	r.mu.Lock()
	var s *aofSample
	for i := len(r.samples) - 1; i >= 0; i-- {
		if !r.samples[i].at.After(killedAt.Add(-lose)) {
			s = &r.samples[i]
			break
		}
	}
	r.mu.Unlock()
	if s == nil {
		return aofCut{}, fmt.Errorf("no AOF size sample %v before the kill", lose)
	}
	st, err := os.Stat(s.file)
	if err != nil {
		return aofCut{}, err
	}
	if st.Size() <= s.size {
		return aofCut{window: killedAt.Sub(s.at)}, nil
	}
	if err := os.Truncate(s.file, s.size); err != nil {
		return aofCut{}, err
	}
	return aofCut{bytes: st.Size() - s.size, window: killedAt.Sub(s.at)}, nil
}
