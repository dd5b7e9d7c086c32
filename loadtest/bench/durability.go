package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/seckill/seckill/stock"
)

// durabilityEnv is the gateway's redis.durability setting.
const durabilityEnv = "SECKILL_REDIS_DURABILITY"

// settingRounds is one redis.durability setting's rounds.
type settingRounds struct {
	setting string // "" leaves the gateway's default
	rounds  []caseResult
}

// runShards is -cluster and -shards: in every round the gateway is
// restarted once per durability setting and runs the full buy path over
// items spread across the shards. The settings alternate inside a round,
// their order rotating between rounds, so drift on a shared machine
// touches them all, and each setting's cost pairs it with the first
// setting's run of the same round.
func runShards(ctx context.Context, e *env, o options) (string, error) {
	var settings []settingRounds
	for _, s := range strings.Split(o.durability, ",") {
		if s = strings.TrimSpace(s); s == "default" {
			s = ""
		}
		settings = append(settings, settingRounds{setting: s})
	}
	sem, err := e.topo.shardOf(ctx, stock.Keys{Prefix: e.prefix}.SemaphoreHolders(semaphoreName))
	if err != nil {
		return "", err
	}
	// One activity for the whole run: every round registers no new items,
	// so the shard checks' background (a fence call per registered item
	// per check) is the same in every round.
	rounds := max(o.rounds, 1)
	perItem := int64(2*rounds*len(settings)*spreadUsers(o)/(o.itemsPerShard*len(e.topo.shards)) + 1000)
	aid, items, err := e.spreadActivity(ctx, o, perItem)
	if err != nil {
		return "", err
	}
	run := 0
	for r := 0; r < rounds; r++ {
		for k := range settings {
			s := &settings[(k+r)%len(settings)]
			var extra []string
			if s.setting != "" {
				extra = append(extra, durabilityEnv+"="+s.setting)
			}
			if err := e.restartGateway(ctx, "gateway-"+durabilityLabel(s.setting), extra...); err != nil {
				return "", err
			}
			res, err := e.benchSpread(ctx, o, aid, items, 1_000_000+run*spreadUsers(o))
			run++
			if err != nil {
				return "", fmt.Errorf("redis.durability=%s: %w", durabilityLabel(s.setting), err)
			}
			waits := 0.0
			for i := range e.topo.shards {
				waits += res.counters[waitsKey(i)]
			}
			// A setting the gateway ignores would measure the same thing twice.
			if s.setting == "replica" && waits == 0 {
				return "", fmt.Errorf("redis.durability=replica: no master ran a WAIT in %d buys; the gateway does not apply %s",
					res.requests, durabilityEnv)
			}
			s.rounds = append(s.rounds, res)
			log.Printf("round %d, redis.durability=%s: gateway %.1f µs, Redis masters %.1f µs per buy, p99 %s, %.2f WAITs per buy",
				r+1, durabilityLabel(s.setting), res.cpuPerReq("gateway"), e.topo.mastersCPU(res), ms(res.metrics.Latencies.P99),
				waits/float64(res.requests))
		}
	}
	return renderShards(o, e.topo, settings, sem), nil
}

func durabilityLabel(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

// mastersCPU is every master's CPU µs per request of r.
func (t *topology) mastersCPU(r caseResult) float64 {
	var sum time.Duration
	for i := range t.shards {
		sum += r.cpu(t.masterName(i))
	}
	return perReq(sum, r.requests)
}

// replicasCPU is every replica's CPU µs per request of r.
func (t *topology) replicasCPU(r caseResult) float64 {
	var sum time.Duration
	for i, s := range t.shards {
		for j := range s.replicas {
			sum += r.cpu(replicaName(i, j))
		}
	}
	return perReq(sum, r.requests)
}

func perReq(d time.Duration, n uint64) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// medianBy returns the round whose f is the median (the lower middle one).
func medianBy(rs []caseResult, f func(caseResult) float64) caseResult {
	s := append([]caseResult(nil), rs...)
	sort.Slice(s, func(i, j int) bool { return f(s[i]) < f(s[j]) })
	return s[(len(s)-1)/2]
}

// renderShards prints the durability settings side by side, then each
// setting's median round per shard, then what the semaphore's shard does
// beyond its items' buys.
func renderShards(o options, t *topology, settings []settingRounds, sem int) string {
	var b strings.Builder
	host, _ := os.Hostname()
	where := "a single Redis (one shard)"
	if t.cluster {
		replicas := 0
		if len(t.shards) > 0 {
			replicas = len(t.shards[0].replicas)
		}
		where = fmt.Sprintf("a Redis Cluster of %d masters with %d replica(s) each", len(t.shards), replicas)
		if o.cluster {
			where += " (append-only file, fsync every second)"
		}
	}
	cmd := "`make bench-cluster`"
	if !o.cluster {
		cmd = "`go run ./loadtest/bench -shards`"
	}
	fmt.Fprintf(&b, "Measured %s on %s (%d cores), %s: the full buy path on %s, one activity with %d items on each shard "+
		"for the whole run, buys rotating over them, rate %d req/s, each run %v measured after %v of warm-up; %d rounds, in each the gateway "+
		"restarted once per redis.durability setting (rotating order). Each row is the setting's round with the median gateway CPU per buy.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), cmd, where, o.itemsPerShard,
		o.rate, o.duration, o.warmup, len(settings[0].rounds))

	b.WriteString("| redis.durability | sent req/s | p50 | p99 | success | CPU µs/buy: gateway | Redis masters | Redis replicas | nats | worker | WAITs per buy |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	medians := make([]caseResult, len(settings))
	for k, s := range settings {
		m := medianBy(s.rounds, func(c caseResult) float64 { return c.cpuPerReq("gateway") })
		medians[k] = m
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |\n",
			durabilityLabel(s.setting), m.metrics.Rate, ms(m.metrics.Latencies.P50), ms(m.metrics.Latencies.P99),
			codes(m.metrics.StatusCodes), m.cpuPerReq("gateway"), t.mastersCPU(m), t.replicasCPU(m),
			m.cpuPerReq("nats"), m.cpuPerReq("worker"), sumShards(t, m, waitsKey)/float64(m.requests))
	}
	for k := 1; k < len(settings); k++ {
		var gw, red, p50, p99 []float64
		for r := range settings[k].rounds {
			a, base := settings[k].rounds[r], settings[0].rounds[r]
			gw = append(gw, a.cpuPerReq("gateway")-base.cpuPerReq("gateway"))
			red = append(red, t.mastersCPU(a)-t.mastersCPU(base))
			p50 = append(p50, msf(a.metrics.Latencies.P50-base.metrics.Latencies.P50))
			p99 = append(p99, msf(a.metrics.Latencies.P99-base.metrics.Latencies.P99))
		}
		fmt.Fprintf(&b, "\nredis.durability=%s against %s, median of the rounds' paired differences: gateway %+.1f µs/buy, "+
			"Redis masters %+.1f µs/buy, p50 %+.2f ms, p99 %+.2f ms.\n", durabilityLabel(settings[k].setting),
			durabilityLabel(settings[0].setting), median(gw), median(red), median(p50), median(p99))
	}
	b.WriteString("\nEvery round (gateway µs/buy, Redis masters µs/buy, p99):")
	for _, s := range settings {
		parts := make([]string, len(s.rounds))
		for r, c := range s.rounds {
			parts[r] = fmt.Sprintf("%.1f, %.1f, %s", c.cpuPerReq("gateway"), t.mastersCPU(c), ms(c.metrics.Latencies.P99))
		}
		fmt.Fprintf(&b, " %s: %s.", durabilityLabel(s.setting), strings.Join(parts, "; "))
	}
	b.WriteString("\n")

	b.WriteString("\nPer shard (each setting's median round). A buy served is a unit its items sold in the measured phase; " +
		"scripts are EVALSHA + EVAL calls on the master (INFO commandstats).\n\n")
	b.WriteString("| redis.durability | shard (slots) | master | share of buys | master CPU µs per buy served | replica CPU µs per buy served | scripts per buy served | WAITs per buy served |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for k, s := range settings {
		m := medians[k]
		total := sumShards(t, m, buysKey)
		for i, sh := range t.shards {
			buys := m.counters[buysKey(i)]
			var repl time.Duration
			for j := range sh.replicas {
				repl += m.cpu(replicaName(i, j))
			}
			fmt.Fprintf(&b, "| %s | %d (%s) | %s | %.1f%% | %.1f | %s | %.3f | %.3f |\n",
				durabilityLabel(s.setting), i, slotRanges(sh.slots), sh.master.addr, pct(buys, total),
				perBuy(float64(m.cpu(t.masterName(i)).Microseconds()), buys), replicaCell(len(sh.replicas), repl, buys),
				perBuy(m.counters[scriptsKey(i)], buys), perBuy(m.counters[waitsKey(i)], buys))
		}
	}

	m := medians[0]
	total := sumShards(t, m, buysKey)
	extra := func(i int) float64 { return m.counters[scriptsKey(i)] - m.counters[buysKey(i)] }
	fmt.Fprintf(&b, "\nSemaphore: its keys {sem:%s} are on shard %d. Scripts on that master beyond its items' buys "+
		"(semaphore leases, and any node-lease renewal hashed there): **%.4f per buy** of the whole %s (redis.durability=%s, median round)",
		semaphoreName, sem, perBuy(extra(sem), total), map[bool]string{true: "cluster", false: "server"}[t.cluster],
		durabilityLabel(settings[0].setting))
	if len(t.shards) > 1 {
		var others []string
		for i := range t.shards {
			if i != sem {
				others = append(others, fmt.Sprintf("shard %d %.4f", i, perBuy(extra(i), total)))
			}
		}
		fmt.Fprintf(&b, "; the same figure on the other masters: %s", strings.Join(others, ", "))
	}
	b.WriteString(".\n")
	for k, s := range settings {
		if n := medians[k].note; n != "" {
			fmt.Fprintf(&b, "\nredis.durability=%s: %s.\n", durabilityLabel(s.setting), n)
		}
	}
	return b.String()
}

// sumShards adds a per-shard counter over every shard.
func sumShards(t *topology, r caseResult, key func(int) string) float64 {
	var sum float64
	for i := range t.shards {
		sum += r.counters[key(i)]
	}
	return sum
}

func perBuy(x, buys float64) float64 {
	if buys <= 0 {
		return 0
	}
	return x / buys
}

func pct(x, total float64) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * x / total
}

func msf(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func replicaCell(n int, cpu time.Duration, buys float64) string {
	if n == 0 {
		return "—"
	}
	return fmt.Sprintf("%.1f", perBuy(float64(cpu.Microseconds()), buys))
}

func slotRanges(rs [][2]int) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("%d-%d", r[0], r[1])
	}
	return strings.Join(parts, ",")
}
