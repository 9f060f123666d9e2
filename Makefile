# Sluice developer entry points. `make run` starts a broker on
# 127.0.0.1:9092 with data under ./data; `make test` runs every test.

GO        ?= go
BIN       := bin/sluice
PKGS      := ./...
# Bounded for CI: the whole suite takes a few minutes on 2 cores.
TEST_TIMEOUT ?= 9m
# Each fuzz target runs this long in `make fuzz`.
FUZZTIME  ?= 20s
# `make bench` runs each benchmark once over a fixed amount of data.
BENCH     ?= .
BENCHTIME ?= 1x
# Package benchmarks `make bench` runs besides ./test/'s, by package.
PARTITION_BENCH ?= AppendRecordCheck|ReadCommitted
# Replication's: the Raft log store, a partition's Raft group, the transport.
REPLICATION_BENCH_TIME ?= 2000x

.PHONY: all build run cluster test race lint bench fuzz clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/sluice

run: build
	./$(BIN) serve --listen 127.0.0.1:9092 --data-dir ./data

# Three nodes on 127.0.0.1 forming one metadata group (Kafka 9092-9094,
# Raft 9193-9195, admin 9644-9646, data under ./data/cluster/); Ctrl-C
# stops them all. Partitions are not replicated yet (see README).
CLUSTER_MEMBERS := 1@127.0.0.1:9193/127.0.0.1:9092,2@127.0.0.1:9194/127.0.0.1:9093,3@127.0.0.1:9195/127.0.0.1:9094
cluster: build
	@trap 'kill 0' INT TERM; \
	for n in 1 2 3; do \
		./$(BIN) serve --node-id $$n --listen 127.0.0.1:909$$((n+1)) --raft-listen 127.0.0.1:919$$((n+2)) \
			--admin-listen 127.0.0.1:964$$((n+3)) --data-dir ./data/cluster/n$$n \
			--cluster-initial-members $(CLUSTER_MEMBERS) & \
	done; \
	wait

# No -short: the cluster tests (three processes each) skip under -short.
test:
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) $(PKGS)

# The race detector over the packages with concurrency (CI runs it).
RACE_PKGS ?= ./log/ ./partition/... ./replication/... ./consumergroup/ ./consumergroup/sharestate/ ./consumergroup/share/... ./wire/
race:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(RACE_PKGS)

lint:
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)
	@$(GO) mod tidy -diff >/dev/null 2>&1 || { echo "go.mod/go.sum not tidy: run go mod tidy"; $(GO) mod tidy -diff; exit 1; }

bench:
	$(GO) test -count=1 -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 20m ./test/
	$(GO) test -count=1 -run '^$$' -bench '$(PARTITION_BENCH)' -benchtime $(BENCHTIME) -timeout 5m ./partition/
	$(GO) test -count=1 -run '^$$' -bench 'StoreLogs|Produce' -benchtime $(REPLICATION_BENCH_TIME) -timeout 5m ./replication/raftlog/ ./replication/raftgroup/
	$(GO) test -count=1 -run '^$$' -bench . -timeout 5m ./replication/transport/

# Runs every fuzz target for FUZZTIME; go test allows one -fuzz target per
# package and run, so targets are discovered with -list and run one by one.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target"; \
			$(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

clean:
	rm -rf bin
	$(GO) clean -testcache
