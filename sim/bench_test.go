package sim

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/vigilhq/vigil/internal/localkafka"
	"github.com/vigilhq/vigil/schemas"
)

// BenchmarkGenerate measures the simulator alone: events generated and
// encoded as JSON, with every scenario running.
func BenchmarkGenerate(b *testing.B) {
	specs, _ := Spread(ScenarioNames(), 10*time.Minute)
	s, err := New(Config{Seed: 1, Users: 100000, Rate: 50000, Start: testStart, Scenarios: specs})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = schemas.AppendJSON(buf[:0], s.Next())
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkProduceKfake measures the simulator producing into an
// in-process Kafka (kfake) over TCP with kafka-go, as `vigil simulate
// --speedup 0` does: the rate it can feed the pipeline benchmarks.
func BenchmarkProduceKfake(b *testing.B) {
	c, err := localkafka.Start(map[string]int{"session-events": 8})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w := &kafka.Writer{Addr: kafka.TCP(c.ListenAddrs()...), Topic: "session-events", Balancer: &kafka.Hash{},
		BatchSize: 5000, BatchBytes: 8 << 20, BatchTimeout: time.Millisecond, RequiredAcks: kafka.RequireOne}
	defer w.Close()
	s, err := New(Config{Seed: 1, Users: 100000, Rate: 50000, Start: testStart, Duration: 0})
	if err != nil {
		b.Fatal(err)
	}
	p := NewProducer(s, w, Pacing{Batch: 5000, Limit: int64(b.N)})
	b.ResetTimer()
	err = p.Run(context.Background())
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(p.Produced())/b.Elapsed().Seconds(), "events/s")
}
