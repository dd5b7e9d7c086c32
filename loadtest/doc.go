// Command loadtest drives a running seckill gateway with vegeta and then
// proves the invariants (README, "Invariants") against the admin stats
// endpoint, PostgreSQL and Redis; or, as `chaos`, starts its own processes
// and kills each part under load.
//
//	go run ./loadtest rush      --rate 2000 --duration 5s --stock 500
//	go run ./loadtest steady    --rate 500 --duration 10s
//	go run ./loadtest lifecycle --rate 200 --duration 5s --pay-timeout 3s
//	go run ./loadtest retry     --rate 1000 --duration 5s
//	go run ./loadtest chaos     [--short]
//
// The scenarios live in loadtest/scenario, the drill in loadtest/chaos, the
// processes they start in loadtest/cluster (see each package's doc). The
// exit code is 0 when every check passed, 1 when one failed, 2 when the run
// could not be carried out.
package main
