// Package chaos is the fault drill (`make chaos`, `go run ./loadtest
// chaos`): under a lifecycle load it kills each part of a seckill
// deployment in turn and proves that nothing was lost, oversold or left
// stranded.
//
// The drill starts everything it uses through loadtest/cluster, in one of
// two topologies (-topology). Nothing touches the machine's shared
// services.
//
// single (the default): its own redis-server (append-only, fsync every
// second), nats-server (JetStream), PostgreSQL (initdb on a free port), two
// workers and two gateways behind a health-checked balancer. The faults,
// one every Gap after Warmup, in this order:
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
// cluster (`make chaos-cluster`): a Redis Cluster of 3 masters and 3
// replicas (appendonly, fsync every second, cluster-node-timeout 2000 ms),
// 3 routed nats-servers with seckill's streams at 3 replicas
// (SECKILL_NATS_URL the list, SECKILL_NATS_REPLICAS=3), PostgreSQL, three
// gateways and two workers. The Redis faults hit the shard of the load's
// item (CLUSTER KEYSLOT of its key; the master is asked of the cluster at
// fault time), and their probes' items are published until they land on
// that shard too:
//
//	kill -9 Redis master  its replica takes over; the failover time is
//	                      until the replica serves the slot, cluster ok
//	restart old master    started on its folder; back when it is a
//	                      replica with master_link_status:up
//	pause Redis master    SIGSTOP the shard's (new) master until its
//	                      replica took over (past the node timeout), then
//	                      SIGCONT: it may still take writes until it learns
//	kill -9 NATS leader   the node leading the orders stream, started
//	                      again after NATSDown
//	kill -9 gateway-1, kill -9 worker-1, stop PostgreSQL   as in single
//
// Before each fault a probe item of ProbeStock units is bought out around
// it. The verdict is the scenario invariants I1–I6 and I7 with the
// outages (loadtest/scenario), plus the drill's own: C1 no 202 lost, C2 no
// oversell on the sell-outs, C3 conservation at every checkpoint, C4
// every part recovered. The per-fault table goes to stdout and to
// <out>/chaos-table.txt; every process's log is in <out>.
package chaos
