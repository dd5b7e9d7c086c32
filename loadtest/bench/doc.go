// Command bench is `make bench`: in one run on this machine it starts what it
// needs (a NATS server, a seckill worker and gateway, a bare baseline
// gateway) over the local Redis and PostgreSQL and measures, side by side:
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
// For each HTTP case it prints req/s, p50/p99 and the CPU time per request
// of every process (from /proc), so the comparison survives a noisy machine.
package main
