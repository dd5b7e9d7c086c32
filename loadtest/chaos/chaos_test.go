package chaos

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/seckill/seckill/loadtest/cluster"
	"github.com/seckill/seckill/loadtest/scenario"
)

// TestChaosShort runs the chaos run compressed (20 s of load at 120/s, the
// five faults 3.5 s apart, PostgreSQL down 2.5 s) against processes of its
// own: it builds seckill and nats-server, initdb's a PostgreSQL cluster and
// starts Redis, so it is opt-in. Every invariant and chaos check must pass.
func TestChaosShort(t *testing.T) {
	if os.Getenv("SECKILL_CHAOS") != "1" {
		t.Skip("set SECKILL_CHAOS=1 to run the short chaos run (builds seckill and nats-server, starts its own " +
			"Redis, NATS, PostgreSQL, 2 gateways and 2 workers, ~1 minute); `make chaos` runs the full one")
	}
	report := runShortChaos(t, topologySingle)
	if !strings.Contains(report, "Redis fsync window.") {
		t.Errorf("report has no Redis paragraph:\n%s", report)
	}
}

// TestChaosClusterShort is TestChaosShort on the cluster topology (Redis
// Cluster 3+3, NATS ×3 with R3 streams, 3 gateways, 2 workers; the seven
// faults 8 s apart, ~2 minutes). Opt-in with SECKILL_CHAOS_CLUSTER=1: it is
// not in CI yet because of an open bug it shows about one run in three
// (issue 10): after the NATS orders-stream leader is killed, payment
// timeouts of orders created around the kill fire up to ~3 s late (the
// sweeper catches them; I7's 1 s p99 fails). Lost, oversold, double-return
// and stranded are 0 in every run.
func TestChaosClusterShort(t *testing.T) {
	if os.Getenv("SECKILL_CHAOS_CLUSTER") != "1" {
		t.Skip("set SECKILL_CHAOS_CLUSTER=1 to run the short chaos run on clusters (6 redis-servers, 3 nats-servers, " +
			"PostgreSQL, 3 gateways and 2 workers, ~2 minutes); `make chaos-cluster` runs the full one")
	}
	report := runShortChaos(t, topologyCluster)
	if !strings.Contains(report, "Redis failovers.") {
		t.Errorf("report has no failover paragraph:\n%s", report)
	}
}

// runShortChaos runs the short chaos run on the topology, fails the test
// unless every check passed and the table has a row per fault, and returns
// the report.
func runShortChaos(t *testing.T, topology string) string {
	cfg, err := parseChaosFlags([]string{"--short", "--topology", topology, "--out", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	var report bytes.Buffer
	res, err := runChaosRun(ctx, cfg, &report, cluster.TestLog(t))
	if err != nil {
		t.Fatalf("run: %v\n%s", err, report.String())
	}
	if failed := res.Failed(); len(failed) > 0 {
		t.Fatalf("failed: %s\n%s", strings.Join(failed, "; "), report.String())
	}
	table, err := os.ReadFile(filepath.Join(cfg.Load.Out, "chaos-table.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range cfg.kinds() {
		if !strings.Contains(string(table), k.String()) {
			t.Errorf("table has no row %q:\n%s", k, table)
		}
	}
	t.Logf("\n%s", report.String())
	return report.String()
}

// TestChaosFlags: the full run's schedule fits its load, --short compresses
// it, flags override either, and impossible schedules are refused.
func TestChaosFlags(t *testing.T) {
	full, err := parseChaosFlags([]string{"--out", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := full.Load.Duration; d < time.Minute || d > 75*time.Second {
		t.Errorf("full load lasts %v, want about 70 s", d)
	}
	if full.Load.Stock <= int64(scenario.PlannedRequests(full.Load)) {
		t.Errorf("stock %d does not outlast %d planned buys", full.Load.Stock, scenario.PlannedRequests(full.Load))
	}
	short, err := parseChaosFlags([]string{"--short", "--rate", "80", "--out", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if short.Load.Duration > 20*time.Second || short.Load.Rate != 80 {
		t.Errorf("short: %v at %d/s, want ≤ 20 s at the --rate given", short.Load.Duration, short.Load.Rate)
	}
	cl, err := parseChaosFlags([]string{"-topology", "cluster", "--out", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Topology != topologyCluster || len(cl.kinds()) != 7 || cl.gateways() != 3 || cl.Load.Duration <= full.Load.Duration {
		t.Errorf("cluster: topology %q, %d faults, %d gateways, %v of load; want cluster, 7, 3, longer than single's %v",
			cl.Topology, len(cl.kinds()), cl.gateways(), cl.Load.Duration, full.Load.Duration)
	}
	shortCl, err := parseChaosFlags([]string{"--short", "--topology=cluster", "--out", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if shortCl.Gap >= cl.Gap || shortCl.Topology != topologyCluster {
		t.Errorf("short cluster: gap %v, topology %q", shortCl.Gap, shortCl.Topology)
	}
	for _, bad := range [][]string{
		{"--topology", "mesh"},
		{"--gap", "2s", "--nats-down", "3s"},
		{"--pay-timeout", "1500ms"},
		{"--probe-stock", "0"},
		{"extra"},
	} {
		if _, err := parseChaosFlags(append(bad, "--out", t.TempDir()), io.Discard); err == nil {
			t.Errorf("parseChaosFlags(%q) accepted it", bad)
		}
	}
}
