package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/slo"
)

// TestSLICountersAgreeWithClickHouse (issue 7, acceptance 3 for the ratio
// and latency SLIs): the counters exported while consuming simulated
// traffic — sampled validations, a store outage, latencies either side of
// the threshold — equal the exact figures of the ClickHouse report
// (slo.BuildReport) over the same events, for every seed SLO.
func TestSLICountersAgreeWithClickHouse(t *testing.T) {
	e, _, _ := newEnv(t, false)
	start := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	s, err := sim.New(sim.Config{Seed: 4, Users: 3000, Rate: 300, SampleRate: 10, Start: start, Duration: 2 * time.Minute,
		Scenarios: []sim.ScenarioSpec{{Name: "reconnect_storm", At: 30 * time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var recs []*kgo.Record
	for ev := s.Next(); ev != nil; ev = s.Next() {
		recs = append(recs, &kgo.Record{Key: []byte(sim.Key(ev)), Value: schemas.AppendJSON(nil, ev)})
	}
	s.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()

	set, err := slo.NewSet(slo.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	m := slo.NewMetrics(nil, set)
	cfg := ingest.DefaultConfig()
	cfg.DrainTimeout = 3 * time.Second
	in, err := ingest.New(ingest.Options{
		Config: cfg, Brokers: e.brokers, Topic: topic, Group: group, DLQTopic: dlqTopic,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		Sink: ingest.NewClickHouseSink(e.conn, e.db), SLOs: set, SLOMetrics: m,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "every event consumed", func() (bool, string) {
		return in.Stats().Events == int64(len(recs)), ""
	})
	shutdown(t, in)
	// A rebalance (a starved machine missing heartbeats) replays batches,
	// which counters count again: then they can only be at least exact.
	exact := in.Stats().Generations == 1
	if !exact {
		t.Logf("a rebalance happened: checking counters >= ClickHouse only")
	}
	var specs []slo.Spec
	for _, spec := range set.Specs() {
		if spec.SLI.Enforcement == nil {
			specs = append(specs, spec)
		}
	}
	rep, err := slo.BuildReport(context.Background(), e.conn, specs, slo.ReportOptions{
		Database: e.db, From: start.Add(-time.Second), To: start.Add(3 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, r := range rep.SLOs {
		good, bad := r.Good, r.Bad
		cg := testutil.ToFloat64(m.Events.WithLabelValues(r.Name, "good"))
		cb := testutil.ToFloat64(m.Events.WithLabelValues(r.Name, "bad"))
		if exact && (cg != good || cb != bad) || !exact && (cg < good || cb < bad) {
			t.Errorf("%s: counters good %g bad %g, ClickHouse report good %g bad %g", r.Name, cg, cb, good, bad)
		}
		if good == 0 {
			t.Errorf("%s: no good events in the fixture", r.Name)
		}
		t.Logf("%s: good %g bad %g", r.Name, good, bad)
		checked++
	}
	if checked != 4 {
		t.Errorf("checked %d SLOs, want the 4 ratio and latency seed SLOs", checked)
	}
	if bad := testutil.ToFloat64(m.Events.WithLabelValues("validation-success", "bad")); bad == 0 {
		t.Error("the store outage made no validation bad: the fixture does not exercise bad events")
	}
}
