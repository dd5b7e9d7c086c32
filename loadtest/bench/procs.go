package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
)

// proc is a child process (started by the harness, loadtest/cluster) whose
// CPU time the bench reads from /proc.
type proc struct {
	*cluster.Proc
	pid int
}

// start starts bin with this process's environment plus env, its output in
// logDir/name.log.
func start(name, logDir string, env []string, bin string, args ...string) (*proc, error) {
	p := &cluster.Proc{Name: name, Bin: bin, Args: args, Env: append(os.Environ(), env...),
		LogPath: filepath.Join(logDir, name+".log")}
	if err := p.Start(); err != nil {
		return nil, err
	}
	return &proc{Proc: p, pid: p.PID()}, nil
}

// stop sends SIGTERM and waits up to 20 s, then kills.
func (p *proc) stop() {
	if p == nil || p.Proc == nil {
		return
	}
	_ = p.Stop(20 * time.Second)
}

// waitHTTP waits until url answers 200, failing early if p exits.
func (p *proc) waitHTTP(ctx context.Context, url string, within time.Duration) error {
	exited := p.Exited()
	ok := cluster.WaitUntil(ctx, within, func(ctx context.Context) bool {
		select {
		case <-exited:
			return true
		default:
		}
		return cluster.HTTPOK(ctx, url)
	})
	select {
	case <-exited:
		return fmt.Errorf("%s exited before %s answered; see its log", p.Name, url)
	default:
	}
	if !ok {
		return fmt.Errorf("%s not ready within %v", url, within)
	}
	return nil
}

// clkTck is USER_HZ, 100 on every Linux this runs on.
const clkTck = 100

// cpuTime returns a process's user+system CPU time so far (/proc/PID/stat
// fields 14 and 15), threads included.
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name (field 2) may hold spaces: count from the last ')'.
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(fields[11], 10, 64)
	st, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clkTck, nil
}

func freePort() int {
	p, err := cluster.FreePort()
	if err != nil {
		panic(err)
	}
	return p
}
