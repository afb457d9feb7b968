package ingest_test

import (
	"context"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
)

// BenchmarkIngestEndToEnd measures events/s from kfake (over TCP) through
// decode, columnar batching and ClickHouse inserts to committed offsets,
// without and with the stream detectors judging every event. Messages are
// produced before the timer starts; the timer stops when every event is
// durable and its batch committed (Stats().Events). Run with
// -benchtime=200000x or more for stable figures.
func BenchmarkIngestEndToEnd(b *testing.B) {
	b.Run("detect=off", func(b *testing.B) { benchIngest(b, nil) })
	b.Run("detect=on", func(b *testing.B) {
		reg, err := detect.NewRegistry(detect.DefaultConfig(), detect.RegistryOptions{})
		if err != nil {
			b.Fatal(err)
		}
		benchIngest(b, reg)
	})
}

func benchIngest(b *testing.B, reg *detect.Registry) {
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
		Sink: ingest.NewClickHouseSink(e.conn, e.db), HeartbeatInterval: 500 * time.Millisecond, Detectors: reg,
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

// BenchmarkReplayToHandoff measures, through the whole pipeline, the time
// from producing a replayed refresh token to kfake until its anomaly is
// durable in ClickHouse and handed on (ns/op; the p50 and p99 are
// reported too). Each iteration replays the rotated token of another
// family whose rotation the ingester has already judged.
func BenchmarkReplayToHandoff(b *testing.B) {
	e, _, _ := newBenchEnv(b)
	const families = 2000
	now := time.Now().UTC().Add(-time.Minute)
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	produce := func(evs ...schemas.Event) {
		var recs []*kgo.Record
		for i := range evs {
			recs = append(recs, &kgo.Record{Key: []byte(evs[i].FamilyID), Value: schemas.AppendJSON(nil, &evs[i])})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	fam := func(i int) string { return "fam-" + strconv.Itoa(i) }
	var rotations []schemas.Event
	for i := range families {
		rotations = append(rotations, schemas.Event{ID: "rot-" + strconv.Itoa(i), Type: schemas.TypeTokenRefreshed, Time: now,
			SessionID: fam(i), FamilyID: fam(i), UserID: "u", IP: "84.150.3.7", UserAgent: "Firefox/132.0", Country: "DE", ASN: 3320,
			ParentTokenID: "rt0-" + fam(i), TokenID: "rt1-" + fam(i), SampleRate: 1})
	}
	produce(rotations...)
	reg, err := detect.NewRegistry(detect.DefaultConfig(), detect.RegistryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	handed := make(chan int, 16)
	dm := detect.NewMetrics(nil)
	in, err := ingest.New(ingest.Options{
		DetectMetrics: dm,
		Config:        ingest.DefaultConfig(), Brokers: e.brokers, Topic: topic, Group: group, DLQTopic: dlqTopic,
		Sink: ingest.NewClickHouseSink(e.conn, e.db), HeartbeatInterval: 500 * time.Millisecond, Detectors: reg,
		OnAnomalies: func(_ context.Context, as []detect.Anomaly) error {
			for range as {
				handed <- 1
			}
			return nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = in.Shutdown(ctx)
	}()
	for in.Stats().Events < families {
		time.Sleep(20 * time.Millisecond) // a benchmark's set-up, not a test: polling is fine here
	}
	var lat []time.Duration
	i := 0
	b.ResetTimer()
	for b.Loop() {
		if i == families {
			b.Fatalf("more iterations than families (%d): run with -benchtime=%dx or less", families, families)
		}
		r := rotations[i]
		r.ID, r.Time, r.TokenID = "replay-"+strconv.Itoa(i), now.Add(time.Second), "rtX"
		r.IP, r.UserAgent, r.Country, r.ASN = "167.99.10.20", "python-requests/2.32.3", "US", 14061
		t0 := time.Now()
		produce(r)
		<-handed
		lat = append(lat, time.Since(t0))
		i++
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	// The share after the message was read: decode, detect, the events and
	// anomalies inserts.
	var m dto.Metric
	if err := dm.HandoffSeconds.Write(&m); err == nil && m.Histogram.GetSampleCount() > 0 {
		b.ReportMetric(m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount())*1000, "read-to-handoff-mean-ms")
	}
}
