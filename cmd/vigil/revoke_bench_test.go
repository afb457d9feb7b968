package main

import (
	"context"
	"testing"

	"github.com/vigilhq/vigil/internal/testenv"
)

// BenchmarkTimeToRevoke measures the closed loop of `vigil run` in one
// process (ingest, token_reuse, outbox, revoker, HTTP adapter): from a
// replayed refresh token being handed to Kafka to its family's revocation
// arriving at the session API, under a background load of 20,000 events/s
// (sim.Stream, 4 partitions); see measureTimeToRevoke. Each iteration is
// one theft. Reports p50, p99 and max in milliseconds. Run with
// -benchtime=300x.
func BenchmarkTimeToRevoke(b *testing.B) {
	srv := testenv.ClickHouse(b)
	_, brokers := testenv.Kafka(b, map[string]int{"session-events": 4, "vigil.dlq": 1, "vigil.actions": 1})
	l, err := measureTimeToRevoke(context.Background(), latencyOptions{Brokers: brokers, ClickHouse: srv.Addr(),
		Database: testenv.Database(b), Thefts: b.N, Rate: 20_000})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(l.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(l.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(l.Max.Microseconds())/1000, "max-ms")
	b.ReportMetric(l.Background, "background-ev/s")
}
