# seckill developer targets. `make test` needs only a running Redis and
# PostgreSQL on 127.0.0.1 (trust auth for user postgres); NATS is embedded.

GO      ?= go
BIN     ?= bin/seckill
IMAGE   ?= seckill
PGHOST  ?= 127.0.0.1
PGPORT  ?= 5432
PGUSER  ?= postgres

.PHONY: build run test bench bench-ablate bench-cluster chaos chaos-cluster vet docker clean

## build: compile the binary to bin/seckill
build:
	$(GO) build -o $(BIN) ./cmd/seckill

## run: create the seckill database if missing, then serve with configs/seckill.yaml
run:
	@out=$$(createdb -h $(PGHOST) -p $(PGPORT) -U $(PGUSER) -w seckill 2>&1) || case "$$out" in \
		*"already exists"*) ;; \
		*) echo "$$out" >&2; exit 1 ;; \
	esac
	$(GO) run ./cmd/seckill serve

## test: every package, with the race detector. The chaos drills (run when
## SECKILL_CHAOS=1) assert payment timeouts in wall-clock time on clusters of
## their own, so they run after the other packages rather than beside the
## cluster tests of stock and cmd/seckill on the same cores.
test:
	$(GO) test -race -count=1 -timeout 12m $$($(GO) list ./... | grep -v '/loadtest/chaos$$')
	$(GO) test -race -count=1 -timeout 12m ./loadtest/chaos

## bench: side-by-side benchmark (baseline, full buy path, sold-out path,
## persister, payment timeouts); writes the table into README.md
bench:
	$(GO) run ./loadtest/bench -readme README.md

## bench-ablate: gateway CPU per buy with each hand-written fast path switched
## off in turn (SECKILL_ABLATE), to loadtest/out/ablate.md
bench-ablate:
	$(GO) run ./loadtest/bench -ablate

## bench-cluster: the full buy path on a Redis Cluster the bench starts
## (3 masters, 1 replica each) with items on every shard: per shard Redis CPU
## per buy and share of buys, the semaphore's shard, and redis.durability
## fence vs replica side by side, to loadtest/out/bench-cluster.md
bench-cluster:
	$(GO) run ./loadtest/bench -cluster $(BENCH_FLAGS)

## chaos: faults under load with its own Redis, NATS, PostgreSQL, two gateways
## and two workers: kill -9/restart each part in turn, verify I1-I7, print the
## per-fault table (also in loadtest/out/chaos-<timestamp>/chaos-table.txt)
chaos:
	$(GO) run ./loadtest chaos $(CHAOS_FLAGS)

## chaos-cluster: the same drill on Redis Cluster (3 masters + 3 replicas),
## 3 NATS nodes (R3 streams), 3 gateways and 2 workers: kill -9 / restart /
## SIGSTOP a Redis master, kill -9 the NATS stream leader, a gateway, a
## worker, stop PostgreSQL
chaos-cluster:
	$(GO) run ./loadtest chaos -topology cluster $(CHAOS_FLAGS)

## vet: formatting check and go vet
vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then \
		echo "gofmt -l: these files need gofmt -w:" >&2; echo "$$unformatted" >&2; exit 1; \
	fi
	$(GO) vet ./...

## docker: build the container image
docker:
	docker build -t $(IMAGE) .

## clean: remove build output
clean:
	rm -rf bin out
