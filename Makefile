# vigil — the README's two commands are `make demo` and `make test`.
GO ?= go
BIN := bin/vigil
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: all setup build test soak demo bench bench-go lint clean

all: build

setup:
	@./scripts/setup.sh

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/vigil

## test: install what is missing, then vet and run every test, under the
## race detector, against real services (about nine minutes on 2 cores).
test: setup
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 12m ./...

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
