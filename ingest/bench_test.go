package ingest_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/sim"
)

// BenchmarkIngestEndToEnd measures events/s from kfake (over TCP) through
// decode, columnar batching and ClickHouse inserts to committed offsets.
// Messages are produced before the timer starts; the timer stops when every
// event is durable and its batch committed (Stats().Events). Run with -benchtime=200000x or more for stable figures.
func BenchmarkIngestEndToEnd(b *testing.B) {
	e, _, _ := newBenchEnv(b)
	if os.Getenv("VIGIL_BENCH_NO_MV") == "1" {
		if err := e.conn.Exec(context.Background(), "DROP TABLE "+e.db+".event_subjects_mv"); err != nil {
			b.Fatal(err)
		}
	}
	n := max(b.N, 10_000)
	s := sim.NewStream(sim.StreamConfig{Seed: 9, Users: 20_000})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	recs := make([]*kgo.Record, 0, 5000)
	for i := 0; i < n; i++ {
		m := s.Next()
		bytes += int64(len(m.Value))
		recs = append(recs, &kgo.Record{Key: m.Key, Value: m.Value})
		if len(recs) == cap(recs) || i == n-1 {
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	cl.Close()

	cfg := ingest.DefaultConfig()
	cfg.LagInterval = 100 * time.Millisecond
	b.ResetTimer()
	start := time.Now()
	in, err := ingest.New(ingest.Options{
		Config: cfg, Brokers: e.brokers, Topic: topic, Group: group, DLQTopic: dlqTopic,
		Sink: ingest.NewClickHouseSink(e.conn, e.db), HeartbeatInterval: 500 * time.Millisecond,
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for in.Stats().Events < int64(n) {
		<-tick.C
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(bytes)/elapsed.Seconds()/1e6, "MB/s")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
}
