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

	"github.com/seckill/seckill/gateway"
)

// ablation is one gateway variant's rounds: "" has every fast path on,
// any other name has that one switched off (SECKILL_ABLATE=name).
type ablation struct {
	name   string
	cpu    []float64 // gateway CPU µs per accepted buy, one per round
	saving []float64 // per round: (this variant − all on) / all on, in %
}

// runAblation measures what each hand-written fast path saves: in every
// round the gateway is restarted once with all fast paths on and once with
// each one off, and runs the full buy path at the bench rate each time. The
// variants alternate inside a round (their order rotating between rounds),
// so drift on a shared machine touches them all; each saving pairs a
// variant with the all-on run of its own round.
func runAblation(ctx context.Context, e *env, o options) (string, error) {
	variants := append([]string{""}, gateway.FastPaths...)
	results := make([]ablation, len(variants))
	for i, v := range variants {
		results[i].name = v
	}
	defer func() {
		// Leave the gateway as production runs it.
		if err := e.restartAblated(ctx, ""); err != nil {
			log.Printf("restart the gateway with every fast path on: %v", err)
		}
	}()
	for r := 0; r < max(o.rounds, 1); r++ {
		cpu := make([]float64, len(variants))
		for k := range variants {
			i := (k + r) % len(variants)
			if err := e.restartAblated(ctx, variants[i]); err != nil {
				return "", err
			}
			res, err := e.benchBuy(ctx, o, "")
			if err != nil {
				return "", fmt.Errorf("ablation %q: %w", variants[i], err)
			}
			cpu[i] = res.cpuPerReq("gateway")
			log.Printf("ablation round %d, %s: gateway CPU %.1f µs per buy", r+1, label(variants[i]), cpu[i])
		}
		for i := range variants {
			results[i].cpu = append(results[i].cpu, cpu[i])
			results[i].saving = append(results[i].saving, 100*(cpu[i]-cpu[0])/cpu[0])
		}
	}
	return renderAblation(o, results), nil
}

// restartAblated restarts the gateway with SECKILL_ABLATE=off ("" switches
// nothing off).
func (e *env) restartAblated(ctx context.Context, off string) error {
	return e.restartGateway(ctx, "gateway-"+strings.NewReplacer(",", "-").Replace(label(off)), gateway.AblateEnv+"="+off)
}

// restartGateway stops the gateway and starts it again on the same
// addresses, its log named name, with extra added to its environment.
func (e *env) restartGateway(ctx context.Context, name string, extra ...string) error {
	e.gw.stop()
	addr := strings.TrimPrefix(e.gwURL, "http://")
	env := append(append([]string(nil), e.procEnv...), "SECKILL_HTTP_ADDR="+addr, "SECKILL_HTTP_PPROF_ADDR="+e.gwPprof)
	gw, err := start(name, e.dir, append(env, extra...), e.seckillBin, "serve", "--role=gateway")
	if err != nil {
		return err
	}
	e.gw = gw
	return gw.waitHTTP(ctx, e.gwURL+"/readyz", 30*time.Second)
}

func label(off string) string {
	if off == "" {
		return "all-on"
	}
	return "no-" + off
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	return s[(len(s)-1)/2]
}

// renderAblation prints the ablation table: per fast path, the gateway CPU
// per buy without it and what it saves as % of the gateway's CPU per buy
// with every fast path on (median of the rounds' paired savings, and
// their range, which shows the noise).
func renderAblation(o options, rs []ablation) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "Fast-path ablation, %s on %s (%d cores), `go run ./loadtest/bench -ablate`: full buy path at %d req/s, "+
		"%v measured after %v of warm-up, %d rounds; in each round the gateway ran once with every fast path on and "+
		"once with each switched off (SECKILL_ABLATE), in rotating order.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), o.rate, o.duration, o.warmup, len(rs[0].cpu))
	b.WriteString("| fast path switched off | gateway CPU µs/buy (median) | saving, % of gateway CPU per buy (median) | saving, range over rounds |\n")
	b.WriteString("|---|---|---|---|\n")
	for i, r := range rs {
		if i == 0 {
			fmt.Fprintf(&b, "| none (all on) | %.1f | — | — |\n", median(r.cpu))
			continue
		}
		lo, hi := r.saving[0], r.saving[0]
		for _, s := range r.saving {
			lo, hi = min(lo, s), max(hi, s)
		}
		fmt.Fprintf(&b, "| %s | %.1f | %+.1f%% | %+.1f%% … %+.1f%% |\n", r.name, median(r.cpu), median(r.saving), lo, hi)
	}
	b.WriteString("\nA fast path earns its place with a saving of at least 2% (issue 9); a positive saving means the gateway spends that much more per buy without it.\n")
	return b.String()
}
