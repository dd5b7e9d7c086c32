package main

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// target builds the i-th request of an attack.
type target func(i uint64, t *vegeta.Target)

// sample is one process's CPU time over a measured phase.
type sample struct {
	name string
	pid  int
	cpu  time.Duration
}

// caseResult is one HTTP case of the benchmark table.
type caseResult struct {
	name     string
	metrics  vegeta.Metrics
	requests uint64 // measured
	sent     uint64 // warm-up included
	procs    []sample
	note     string
}

// cpuPerReq returns a process's CPU time per request in µs.
func (c caseResult) cpuPerReq(name string) float64 {
	for _, p := range c.procs {
		if p.name == name {
			return float64(p.cpu.Microseconds()) / float64(c.requests)
		}
	}
	return 0
}

// attack sends rate req/s for warm, unmeasured, and then for d, measuring
// the requests sent in the second phase and the CPU time every watched
// process spent during it. Both phases are one vegeta attack (an attacker
// runs once), so the measured phase starts with open connections and warm
// processes on both sides, whichever case runs first.
func attack(name string, rate int, warm, d time.Duration, tg target, watch map[string]int) (caseResult, error) {
	var n atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		tg(n.Add(1)-1, t)
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Connections(256), vegeta.MaxConnections(512),
		vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true), vegeta.Workers(64), vegeta.MaxWorkers(512))
	sampleCPU := func() (map[string]time.Duration, error) {
		out := map[string]time.Duration{}
		for pn, pid := range watch {
			c, err := cpuTime(pid)
			if err != nil {
				return nil, fmt.Errorf("cpu of %s: %w", pn, err)
			}
			out[pn] = c
		}
		return out, nil
	}
	began := time.Now()
	measureFrom := began.Add(warm)
	type snap struct {
		cpu  map[string]time.Duration
		sent uint64
		err  error
	}
	startSnap := make(chan snap, 1)
	go func() {
		time.Sleep(time.Until(measureFrom))
		cpu, err := sampleCPU()
		startSnap <- snap{cpu, n.Load(), err}
	}()
	var m vegeta.Metrics
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, warm+d, name) {
		if !res.Timestamp.Before(measureFrom) {
			m.Add(res)
		}
	}
	m.Close()
	end, err := sampleCPU()
	if err != nil {
		return caseResult{}, err
	}
	before := <-startSnap
	if before.err != nil {
		return caseResult{}, before.err
	}
	r := caseResult{name: name, metrics: m, requests: m.Requests, sent: n.Load()}
	for pn, pid := range watch {
		r.procs = append(r.procs, sample{name: pn, pid: pid, cpu: end[pn] - before.cpu[pn]})
	}
	return r, nil
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}
