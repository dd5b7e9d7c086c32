// Package chaos is the fault drill (`make chaos`, `go run ./loadtest
// chaos`): under a lifecycle load it kills each part of a seckill
// deployment in turn and proves that nothing was lost, oversold or left
// stranded.
//
// The drill starts everything it uses through loadtest/cluster: its own
// redis-server (append-only, fsync every second), nats-server (JetStream),
// PostgreSQL (initdb on a free port), two workers and two gateways behind
// a health-checked balancer. Nothing touches the machine's shared
// services.
//
// The faults, one every Gap after Warmup, in this order:
//
//	kill -9 gateway-1   started again after RestartAfter
//	kill -9 worker-1    started again after RestartAfter (its unacked
//	                    batch comes back after the ack wait)
//	restart NATS        clean stop, down NATSDown, same store
//	kill -9 Redis       the AOF cut back by RedisLose (what a host crash
//	                    loses under appendfsync everysec), restarted on it;
//	                    the items stay fenced until the rebuild
//	stop PostgreSQL     pg_ctl stop -m fast, down PGDown
//
// Before each fault a probe item of ProbeStock units is bought out around
// it. The verdict is the scenario invariants I1–I6 and I7 with the
// outages (loadtest/scenario), plus the drill's own: C1 no 202 lost, C2 no
// oversell on the sell-outs, C3 conservation at every checkpoint, C4
// every part recovered. The per-fault table goes to stdout and to
// <out>/chaos-table.txt; every process's log is in <out>.
package chaos
