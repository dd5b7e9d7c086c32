// Package cluster starts real components on free loopback ports for tests,
// drills and benchmarks, and stops them: the one place that knows how to
// run redis-server, nats-server, PostgreSQL and seckill as child processes.
//
// Every process is a *Proc: it reports its PID (the bench reads
// /proc/PID/stat for CPU), and can be killed (Kill, SIGKILL), paused
// (Pause/Resume, SIGSTOP/SIGCONT), stopped cleanly (Stop, SIGTERM) and
// started again on the same port and data folder (Restart on each type).
//
// Components, each with a Start… function for drills (the caller calls
// Close or Kill) and a New… function for tests (t.Cleanup stops it):
//
//	Redis         StartRedis / NewRedis            one redis-server
//	RedisCluster  StartRedisCluster / NewRedisCluster
//	              N masters × (1+R) nodes, joined by redis-cli --cluster
//	              create; ready when every node says cluster_state:ok and
//	              every replica's master link is up
//	NATS          StartNATS / NewNATS              one nats-server, JetStream on
//	NATSCluster   StartNATSCluster / NewNATSCluster
//	              N routed nats-servers; ready when every node's JetStream
//	              answers (a meta leader exists), so R3 streams work
//	Postgres      StartPostgres                    initdb + pg_ctl on a free
//	              port (as root, through runuser to the postgres user)
//	database      CreateDatabase / NewDatabase     a database of its own on
//	              the local server (PostgresDSN)
//	Seckill       StartSeckill / NewSeckill        `seckill serve` with env
//	              config, ready when /readyz answers 200
//
// nats-server and seckill are built once per process from this module
// (NATSServerBinary at the version go.mod pins, SeckillBinary from this
// tree); RemoveBinaries deletes them. The in-process NATS server of
// order's unit tests stays where it is: this package is for processes.
//
// Waiting: WaitUntil is the one polling loop (a port that listens, a
// server that answers), and Eventually is its form for tests. This package
// imports no seckill domain package, so stocktest and ordertest may use it.
package cluster
