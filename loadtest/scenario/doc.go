// Package scenario is the load test's engine: it drives a running seckill
// gateway with vegeta and then proves the README's invariants against the
// admin stats endpoint, PostgreSQL and Redis.
//
// A run (Main, or runScenario in the tests) creates and publishes an
// activity of its own, plans the requests of one Scenario, sends them at
// the rate while the Scenario reacts to each answer (retries, payments,
// cancels), waits until the pipeline has drained, gathers the Facts and
// checks them. The scenarios, and what each verifies on top of I1–I5:
//
//	rush       many users, small stock, a burst: S1 sells exactly the stock
//	steady     large stock, constant rate: S1 every buy accepted
//	lifecycle  short payment timeout; orders are paid, cancelled or left to
//	           time out: I6 paid is final, I7 timeliness
//	retry      resends with one Idempotency-Key, retries on timeout/5xx:
//	           R1 one order per buyer, R2 one order id per key, R3 no
//	           holder refused
//
// The invariants, exported once (the chaos drill reuses them):
//
//	I1 no oversell            Session.CheckI1
//	I2 no lost order          Session.CheckI2
//	I3 conservation           Session.CheckI3
//	I4 exactly-once return    Session.CheckI4
//	I5 per-user limit         Session.CheckI5
//	I6 paid is final          CheckI6
//	I7 timeliness             CheckI7 (with Outages when parts were down)
//
// Session.Invariants is I1–I5, which every scenario must keep. The report
// goes to stdout and <out>/report.txt, next to vegeta's results.bin and
// plot.html; a progress line goes to stderr every second.
package scenario
