# vigil — the README's two commands are `make demo` and `make test`.
GO ?= go
BIN := bin/vigil
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all setup build test test-cluster cluster-pass soak demo bench bench-go lint clean

all: build

setup:
	@./scripts/setup.sh

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/vigil

## test: install what is missing, then vet and run every test, under the
## race detector, against real services; then the cluster pass
## (test-cluster). About twelve minutes on 2 cores.
test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 12m ./...
	@$(MAKE) --no-print-directory cluster-pass

## test-cluster: the suites that read and write ClickHouse (schema, ingest,
## the detectors' state and window queries, alerts' runbook SQL, SLO
## reports, postmortems) again, against a ClickHouse cluster of two shards
## of two replicas over Debian's ZooKeeper: migrated with --cluster, read
## and written through Distributed tables. Without the race detector: the
## code is the same as in the first pass, the SQL and its data are not.
test-cluster: setup cluster-pass

# The detectors' ClickHouse tests run alongside the other suites (each test
# binary starts its own cluster); the pass fails if either does.
cluster-pass:
	@VIGIL_TEST_CLICKHOUSE_CLUSTER=1 $(GO) test -count=1 -timeout 12m -run 'ClickHouse|Window' ./detect/ & detect=$$!; \
	VIGIL_TEST_CLICKHOUSE_CLUSTER=1 $(GO) test -count=1 -timeout 12m ./schemas/clickhouse/ ./ingest/ ./alerts/ ./slo/ ./postmortem/ ./sim/score/; rc=$$?; \
	wait $$detect || rc=1; exit $$rc

## soak: the fault suite (TestFaults) with random faults for 10 minutes:
## vigil killed, ClickHouse killed, stalled and cut, Kafka cut, the session
## API failing; then every event, dead letter, anomaly and revocation
## checked by query, once each.
soak: setup
	VIGIL_SOAK=10m VIGIL_REQUIRE_SERVICES=1 $(GO) test -count=1 -run '^TestFaults$$' -timeout 20m -v ./cmd/vigil/

## demo: the whole pipeline on its embedded default with live progress.
demo: setup build
	./$(BIN) demo

## bench: vigil against ClickHouse's Kafka engine and a kcat pipe, then replay→revocation latency and detector memory (about five minutes; figures in docs/benchmarks.md).
bench: setup build
	./$(BIN) bench

## bench-go: decoder and end-to-end ingest micro-benchmarks (go test -bench).
bench-go: setup
	$(GO) test -run '^$$' -bench . -benchmem ./schemas/ ./ingest/ ./sim/ ./detect/ ./slo/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
