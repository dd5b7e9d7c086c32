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
	counters map[string]float64 // a probe's counters, measured phase only
	note     string
}

// cpu returns a process's CPU time in the measured phase.
func (c caseResult) cpu(name string) time.Duration {
	for _, p := range c.procs {
		if p.name == name {
			return p.cpu
		}
	}
	return 0
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

// probe adds counters that only grow (commands a server ran, units sold)
// to out; attackProbed reports how much each grew in the measured phase.
type probe func(out map[string]float64) error

// attack sends rate req/s for warm, unmeasured, and then for d, measuring
// the requests sent in the second phase and the CPU time every watched
// process spent during it. Both phases are one vegeta attack (an attacker
// runs once), so the measured phase starts with open connections and warm
// processes on both sides, whichever case runs first.
func attack(name string, rate int, warm, d time.Duration, tg target, watch map[string]int) (caseResult, error) {
	return attackProbed(name, rate, warm, d, tg, watch, nil)
}

// attackProbed is attack that also reads pr (if not nil) next to each CPU
// sample.
func attackProbed(name string, rate int, warm, d time.Duration, tg target, watch map[string]int, pr probe) (caseResult, error) {
	var n atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		tg(n.Add(1)-1, t)
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Connections(256), vegeta.MaxConnections(512),
		vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true), vegeta.Workers(64), vegeta.MaxWorkers(512))
	sampleCPU := func() (map[string]time.Duration, map[string]float64, error) {
		out := map[string]time.Duration{}
		for pn, pid := range watch {
			c, err := cpuTime(pid)
			if err != nil {
				return nil, nil, fmt.Errorf("cpu of %s: %w", pn, err)
			}
			out[pn] = c
		}
		counters := map[string]float64{}
		if pr != nil {
			if err := pr(counters); err != nil {
				return nil, nil, fmt.Errorf("%s: probe: %w", name, err)
			}
		}
		return out, counters, nil
	}
	began := time.Now()
	measureFrom := began.Add(warm)
	type snap struct {
		cpu      map[string]time.Duration
		counters map[string]float64
		sent     uint64
		err      error
	}
	startSnap := make(chan snap, 1)
	go func() {
		time.Sleep(time.Until(measureFrom))
		cpu, counters, err := sampleCPU()
		startSnap <- snap{cpu, counters, n.Load(), err}
	}()
	var m vegeta.Metrics
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, warm+d, name) {
		if !res.Timestamp.Before(measureFrom) {
			m.Add(res)
		}
	}
	m.Close()
	end, endCounters, err := sampleCPU()
	if err != nil {
		return caseResult{}, err
	}
	before := <-startSnap
	if before.err != nil {
		return caseResult{}, before.err
	}
	r := caseResult{name: name, metrics: m, requests: m.Requests, sent: n.Load(), counters: map[string]float64{}}
	for pn, pid := range watch {
		r.procs = append(r.procs, sample{name: pn, pid: pid, cpu: end[pn] - before.cpu[pn]})
	}
	for k, v := range endCounters {
		r.counters[k] = v - before.counters[k]
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
