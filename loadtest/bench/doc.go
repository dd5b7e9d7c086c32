// Command bench is `make bench`: in one run on this machine it starts what it
// needs (a NATS server, a seckill worker and gateway, a bare baseline
// gateway; the binaries built by loadtest/cluster) over the local Redis and
// PostgreSQL and measures, side by side:
//
//   - baseline: net/http + go-redis, one EVALSHA of the buy script per request;
//   - seckill's full buy path (auth, Sentinel, semaphore, Lua, publish);
//   - the sold-out path after the sell-out, with the Redis calls it made;
//   - the persister: orders/s from a JetStream backlog into PostgreSQL;
//   - payment timeouts: lateness p50/p99/max and early count with 100,000 pending.
//
// With -ablate it measures instead what each hand-written fast path of the
// gateway saves (gateway.AblateEnv), with every path on and each one off.
//
// With -cluster (`make bench-cluster`) it starts its own Redis Cluster (3
// masters, 1 replica each, append-only file fsynced every second) and
// measures the full buy path over an activity with -items-per-shard items on
// every shard (item ids picked by CLUSTER KEYSLOT of their item key), in
// rounds that restart the gateway once per redis.durability setting
// (-durability, default fence then replica, through SECKILL_REDIS_DURABILITY;
// a replica round in which no master ran a WAIT is refused as a setting the
// gateway ignored). It prints, per setting, gateway / Redis masters /
// replicas CPU per buy, p50/p99 and WAITs per buy, the median of the rounds'
// paired differences, then per shard the share of buys (units its items
// sold), master and replica CPU per buy it served, scripts and WAITs per buy
// (INFO commandstats), and the scripts the semaphore's shard ran beyond its
// items' buys, which is what the global {sem:buy} key costs. -shards runs the
// same rounds on the Redis of -redis (a single server is one shard).
//
// For each HTTP case it prints req/s, p50/p99 and the CPU time per request
// of every process (from /proc), so the comparison survives a noisy machine.
package main
