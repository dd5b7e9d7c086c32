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
	requests uint64
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

// attack sends rate req/s for d and measures the CPU time every watched
// process spent meanwhile.
func attack(name string, rate int, d time.Duration, tg target, watch map[string]int) (caseResult, error) {
	var n atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		tg(n.Add(1)-1, t)
		return nil
	}
	atk := vegeta.NewAttacker(vegeta.Connections(256), vegeta.MaxConnections(512),
		vegeta.Timeout(5*time.Second), vegeta.KeepAlive(true), vegeta.Workers(64), vegeta.MaxWorkers(512))
	before := map[string]time.Duration{}
	for pn, pid := range watch {
		c, err := cpuTime(pid)
		if err != nil {
			return caseResult{}, fmt.Errorf("cpu of %s: %w", pn, err)
		}
		before[pn] = c
	}
	var m vegeta.Metrics
	for res := range atk.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, d, name) {
		m.Add(res)
	}
	m.Close()
	r := caseResult{name: name, metrics: m, requests: m.Requests}
	for pn, pid := range watch {
		c, err := cpuTime(pid)
		if err != nil {
			return caseResult{}, fmt.Errorf("cpu of %s: %w", pn, err)
		}
		r.procs = append(r.procs, sample{name: pn, pid: pid, cpu: c - before[pn]})
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
