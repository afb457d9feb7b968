package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
)

// detecting configures an ingester with stream detectors.
type detecting struct {
	group   string
	handed  *anomalySink         // collects what it hands on; nil hands nothing on
	history detect.History       // nil: the test database's events
	detect  func(*detect.Config) // changes the detector config
	ingest  func(*ingest.Config) // changes the ingest config
	metrics *detect.Metrics
	tracer  trace.Tracer // nil: tracing off
}

// detectingIngester starts an ingester in group g with fresh stream
// detectors whose state is rebuilt from the test database; handed collects
// what it hands on.
func (e *env) detectingIngester(g string, handed *anomalySink) *ingest.Ingester {
	e.t.Helper()
	return e.detectingIngesterWith(detecting{group: g, handed: handed})
}

// detectingIngesterWith starts an ingester as o says.
func (e *env) detectingIngesterWith(o detecting) *ingest.Ingester {
	e.t.Helper()
	dcfg := detect.DefaultConfig()
	if o.detect != nil {
		o.detect(&dcfg)
	}
	reg, err := detect.NewRegistry(dcfg, detect.RegistryOptions{Metrics: o.metrics})
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := ingest.DefaultConfig()
	cfg.DrainTimeout = 3 * time.Second
	if o.ingest != nil {
		o.ingest(&cfg)
	}
	if o.history == nil {
		o.history = detect.NewClickHouseHistory(e.conn, e.db)
	}
	var handOn func(context.Context, []detect.Anomaly) error
	if o.handed != nil {
		handOn = o.handed.add
	}
	in, err := ingest.New(ingest.Options{
		Config: cfg, Brokers: e.brokers, Topic: topic, Group: o.group, DLQTopic: dlqTopic,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		Sink:      ingest.NewClickHouseSink(e.conn, e.db),
		Logger:    slog.New(slog.NewTextHandler(newTestWriter(e.t), &slog.HandlerOptions{Level: slog.LevelWarn})),
		Detectors: reg, DetectMetrics: o.metrics, History: o.history, OnAnomalies: handOn, Tracer: o.tracer,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return in
}

// rotationCommitted has a detecting ingester consume a login and its
// token rotation, commit them, raise nothing, and stop: the process goes
// away with its detector state.
func (e *env) rotationCommitted(created, rotation schemas.Event) {
	e.t.Helper()
	e.produceEvents(created, rotation)
	var handed anomalySink
	in := e.detectingIngester(group, &handed)
	testenv.WaitFor(e.t, time.Minute, "the rotation committed", func() (bool, string) {
		s := in.Stats()
		return s.Events == 2 && s.Commits >= 1, ""
	})
	shutdown(e.t, in)
	if ids := handed.ids(); len(ids) != 0 {
		e.t.Fatalf("the rotation alone raised %v", ids)
	}
}

func shutdown(t *testing.T, in *ingest.Ingester) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// anomalySink records the anomalies an ingester hands on.
type anomalySink struct {
	mu sync.Mutex
	as []detect.Anomaly
}

func (s *anomalySink) add(_ context.Context, as []detect.Anomaly) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.as = append(s.as, as...)
	return nil
}

func (s *anomalySink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for _, a := range s.as {
		ids = append(ids, a.ID)
	}
	return ids
}

// produceEvents writes events keyed by family, as a session service would.
func (e *env) produceEvents(evs ...schemas.Event) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := range evs {
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(evs[i].FamilyID), Value: schemas.AppendJSON(nil, &evs[i])})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		e.t.Fatal(err)
	}
}

// TestDetectAcrossRestart is acceptance point 2: a token rotation is
// consumed and committed, the process goes away with its state, the
// replay arrives afterwards and the restarted process raises the anomaly
// (its state rebuilt from ClickHouse), exactly once; consuming the same
// offsets again (another consumer group) gives the same anomaly id, and
// the table holds one anomaly.
func TestDetectAcrossRestart(t *testing.T) {
	e, _, _ := newEnv(t, false)
	created, rotation, replay := testenv.TokenTheft(time.Now().UTC().Add(-time.Minute))

	// First process: consumes the rotation, commits, and goes away.
	e.rotationCommitted(created, rotation)

	// The replay arrives while no process runs; the next one catches it.
	e.produceEvents(replay)
	var second anomalySink
	b := e.detectingIngester(group, &second)
	testenv.WaitFor(t, time.Minute, "the replay judged", func() (bool, string) {
		return b.Stats().Events == 1 && len(second.ids()) == 1, ""
	})
	shutdown(t, b)
	got := second.as[0]
	if got.Detector != detect.TokenReuse || got.Kind != detect.KindReplayOtherClient || got.FamilyID != "f1" || !got.FirstEventTime.Equal(replay.Time) {
		t.Fatalf("anomaly = %+v", got)
	}

	// The same offsets consumed again, from the start, by another group:
	// the same anomaly, with the same id.
	var again anomalySink
	c := e.detectingIngester("vigil-replay", &again)
	testenv.WaitFor(t, time.Minute, "the partition replayed", func() (bool, string) {
		return c.Stats().Events == 3 && len(again.ids()) == 1, ""
	})
	shutdown(t, c)
	if again.as[0].ID != got.ID {
		t.Errorf("replay raised id %s, first run %s", again.as[0].ID, got.ID)
	}
	if n := e.scalar("SELECT count() FROM " + e.db + ".anomalies FINAL"); n != 1 {
		t.Errorf("anomalies after dedup = %d, want 1", n)
	}
	if n := e.scalar("SELECT uniqExact(id) FROM " + e.db + ".anomalies"); n != 1 {
		t.Errorf("distinct anomaly ids = %d, want 1", n)
	}
	var kind, severity, evidence string
	if err := e.conn.QueryRow(context.Background(), "SELECT kind, toString(severity), evidence FROM "+e.db+".anomalies LIMIT 1").Scan(&kind, &severity, &evidence); err != nil {
		t.Fatal(err)
	}
	if kind != detect.KindReplayOtherClient || severity != "critical" || evidence == "" {
		t.Errorf("stored anomaly: kind %q severity %q evidence %q", kind, severity, evidence)
	}
}

// TestAnomalyDoesNotWaitForTheFlushInterval: with a ten-minute flush
// interval, a raised anomaly is still durable and handed on at once (its
// batch goes to the idle writer), while events without one wait.
func TestAnomalyDoesNotWaitForTheFlushInterval(t *testing.T) {
	e, _, _ := newEnv(t, false)
	created, rotation, replay := testenv.TokenTheft(time.Now().UTC().Add(-time.Minute))
	e.produceEvents(created, rotation, replay)
	var handed anomalySink
	in := e.detectingIngesterWith(detecting{group: group, handed: &handed, ingest: func(c *ingest.Config) { c.FlushInterval = 10 * time.Minute }})
	defer shutdown(t, in)
	testenv.WaitFor(t, 30*time.Second, "the replay handed on", func() (bool, string) {
		return len(handed.ids()) == 1, ""
	})
	// The hand-off runs alongside the anomaly's insert: both happen at
	// once, not after the ten-minute flush interval.
	testenv.WaitFor(t, 30*time.Second, "the anomaly stored", func() (bool, string) {
		n := e.scalar("SELECT count() FROM " + e.db + ".anomalies")
		return n == 1, fmt.Sprintf("%d anomalies", n)
	})
	// The events of the urgent batch are inserted alongside, not after ten minutes.
	testenv.WaitFor(t, 30*time.Second, "the urgent batch's events stored", func() (bool, string) {
		n := e.scalar("SELECT count() FROM " + e.db + ".events")
		return n == 3, fmt.Sprintf("%d events", n)
	})
}

// failingHistory is a History whose store is always down.
type failingHistory struct{}

var errStoreDown = errors.New("store down")

func (failingHistory) Newest(context.Context, int32, int64, time.Duration) (time.Time, bool, error) {
	return time.Time{}, false, errStoreDown
}

func (failingHistory) Events(context.Context, detect.HistoryQuery, func(*schemas.Event) error) error {
	return errStoreDown
}

func (failingHistory) LastSeen(context.Context, detect.HistoryQuery, func(string, string, time.Time) error) error {
	return errStoreDown
}

// TestRebuildGivesUp: when the history cannot be read for longer than
// detect.rebuild_timeout, the partition is consumed anyway, with empty
// state, and the abandonment is counted.
func TestRebuildGivesUp(t *testing.T) {
	e, _, _ := newEnv(t, false)
	created, rotation, replay := testenv.TokenTheft(time.Now().UTC().Add(-time.Minute))
	e.rotationCommitted(created, rotation)

	e.produceEvents(replay)
	m := detect.NewMetrics(nil)
	b := e.detectingIngesterWith(detecting{
		group: group, history: failingHistory{}, metrics: m,
		detect: func(c *detect.Config) { c.RebuildTimeout = time.Second },
		ingest: func(c *ingest.Config) { c.RetryInitial, c.RetryMax = 50*time.Millisecond, 200*time.Millisecond },
	})
	defer shutdown(t, b)
	testenv.WaitFor(t, time.Minute, "the replay consumed despite the failed rebuild", func() (bool, string) {
		return b.Stats().Events == 1, ""
	})
	if n := testutil.ToFloat64(m.RebuildsAbandoned); n < 1 {
		t.Errorf("rebuilds abandoned = %g, want at least 1", n)
	}
	if n := e.scalar("SELECT count() FROM " + e.db + ".anomalies"); n != 0 {
		t.Errorf("%d anomalies without the rotation's state, want 0 (the blind spot the counter reports)", n)
	}
}
