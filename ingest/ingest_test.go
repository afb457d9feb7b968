package ingest_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/ingest"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	chschema "github.com/vigilhq/vigil/schemas/clickhouse"
	"github.com/vigilhq/vigil/sim"
)

const (
	topic    = "session-events"
	dlqTopic = "vigil.dlq"
	group    = "vigil"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m,
		goleak.IgnoreAnyFunction("github.com/segmentio/kafka-go.(*connPool).discover"), // a kafka.Transport's metadata refresher lives with the process
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	))
}

// env is one test's Kafka, ClickHouse database and helpers.
type env struct {
	t       *testing.T
	brokers []string
	conn    driver.Conn
	db      string
	srvAddr string
}

func newEnv(t *testing.T, ownClickHouse bool) (*env, func() error, func(context.Context) error) {
	t.Helper()
	return newTBEnv(t, t, ownClickHouse)
}

func newBenchEnv(b *testing.B) (*env, func() error, func(context.Context) error) {
	return newTBEnv(b, nil, false)
}

func newTBEnv(t testing.TB, tt *testing.T, ownClickHouse bool) (*env, func() error, func(context.Context) error) {
	t.Helper()
	_, brokers := testenv.Kafka(t, map[string]int{topic: 4, dlqTopic: 2})
	srv := testenv.ClickHouse(t)
	if ownClickHouse {
		srv = testenv.OwnClickHouse(t)
	}
	e := &env{t: tt, brokers: brokers, conn: testenv.Conn(t, srv), db: testenv.Database(t), srvAddr: srv.Addr()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := chschema.MigrateCluster(ctx, e.conn, e.db, testenv.ClusterOf(srv)); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return e, srv.Stop, srv.Restart
}

func (e *env) ingester(cfg ingest.Config, log *slog.Logger) *ingest.Ingester {
	e.t.Helper()
	return e.ingesterWith(cfg, log, nil, nil)
}

func (e *env) ingesterWith(cfg ingest.Config, log *slog.Logger, tracer trace.Tracer, m *ingest.Metrics) *ingest.Ingester {
	e.t.Helper()
	if cfg.DrainTimeout >= 6*time.Second {
		cfg.DrainTimeout = 3 * time.Second // below the 6s session timeout used here
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(newTestWriter(e.t), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	in, err := ingest.New(ingest.Options{
		Config: cfg, Brokers: e.brokers, Topic: topic, Group: group, DLQTopic: dlqTopic,
		SessionTimeout: 6 * time.Second, RebalanceTimeout: 6 * time.Second, HeartbeatInterval: 500 * time.Millisecond,
		Sink: ingest.NewClickHouseSink(e.conn, e.db), Logger: log, Tracer: tracer, Metrics: m,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := in.Shutdown(ctx); err != nil {
			e.t.Errorf("shutdown: %v", err)
		}
	})
	return in
}

// produce writes n messages of s to the events topic, recording what was
// sent in want; it fails the test on error.
func (e *env) produce(s *sim.Stream, n int, want *expect) {
	e.t.Helper()
	if err := e.produceErr(s, n, want); err != nil {
		e.t.Fatal(err)
	}
}

// produceSteadily writes total messages of s in chunks, one chunk per tick,
// from another goroutine; closing faster sends the rest without waiting. The
// returned channel closes when everything is produced.
func (e *env) produceSteadily(s *sim.Stream, total, chunk int, tick time.Duration, want *expect, faster <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(tick)
		defer t.Stop()
		for range total / chunk {
			if err := e.produceErr(s, chunk, want); err != nil {
				e.t.Error(err) // not Fatal: this is not the test goroutine
				return
			}
			select {
			case <-t.C:
			case <-faster:
			}
		}
	}()
	return done
}

// produceErr is produce returning its error, for use off the test goroutine.
func (e *env) produceErr(s *sim.Stream, n int, want *expect) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ProducerLinger(5*time.Millisecond), kgo.ProducerBatchMaxBytes(1<<20))
	if err != nil {
		return err
	}
	defer cl.Close()
	recs := make([]*kgo.Record, 0, 1000)
	reasons := map[*kgo.Record]schemas.Reason{} // results come back in completion order
	flush := func() error {
		res := cl.ProduceSync(context.Background(), recs...)
		if err := res.FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
		for _, r := range res {
			if reason := reasons[r.Record]; reason != "" {
				want.invalidAt(r.Record.Partition, r.Record.Offset, reason)
			}
		}
		recs = recs[:0]
		clear(reasons)
		return nil
	}
	for range n {
		m := s.Next()
		want.add(m)
		rec := &kgo.Record{Topic: topic, Key: m.Key, Value: m.Value, Headers: []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")}}}
		reasons[rec] = m.Reason
		recs = append(recs, rec)
		if len(recs) == cap(recs) {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// expect accumulates what the stream sent.
type expect struct {
	mu       sync.Mutex
	valid    int
	byReason map[schemas.Reason]int
	sample   map[string][]byte         // a few valid events by id, to compare with what ClickHouse stored
	reasonAt map[string]schemas.Reason // "partition/offset" of each invalid message → its reason
}

func newExpect() *expect {
	return &expect{byReason: map[schemas.Reason]int{}, sample: map[string][]byte{}, reasonAt: map[string]schemas.Reason{}}
}

func (x *expect) invalidAt(partition int32, offset int64, r schemas.Reason) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.reasonAt[fmt.Sprintf("%d/%d", partition, offset)] = r
}

func (x *expect) add(m sim.Message) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if m.Valid {
		x.valid++
		if x.valid%97 == 0 {
			x.sample[m.ID] = m.Value
		}
		return
	}
	x.byReason[m.Reason]++
}

func (x *expect) invalid() int {
	n := 0
	for _, c := range x.byReason {
		n += c
	}
	return n
}

func (e *env) scalar(query string) uint64 {
	e.t.Helper()
	var n uint64
	if err := e.conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		e.t.Fatalf("%s: %v", query, err)
	}
	return n
}

// waitCaughtUp waits until the ingester has made want durable and lag is 0.
func waitCaughtUp(t *testing.T, in *ingest.Ingester, timeout time.Duration, total int) {
	t.Helper()
	testenv.WaitFor(t, timeout, "lag 0 on every partition", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lags, err := in.Lag(ctx)
		if err != nil {
			return false, err.Error()
		}
		var sum, end int64
		for _, l := range lags {
			sum += l.Messages
			end += l.LogEnd
		}
		return sum == 0 && end == int64(total), fmt.Sprintf("lag %d, log end %d of %d: %+v", sum, end, total, lags)
	})
}

// checkStored asserts the exact contents of events and dead_letters and the DLQ topic.
func (e *env) checkStored(want *expect, dlqExact bool) {
	e.t.Helper()
	db := e.db
	if got := e.scalar("SELECT count() FROM " + db + ".events FINAL"); got != uint64(want.valid) {
		e.t.Errorf("events after dedup: got %d, want %d", got, want.valid)
	}
	if got := e.scalar("SELECT uniqExact(id) FROM " + db + ".events"); got != uint64(want.valid) {
		e.t.Errorf("distinct event ids: got %d, want %d", got, want.valid)
	}
	if got := e.scalar("SELECT count() FROM " + db + ".dead_letters FINAL"); got != uint64(want.invalid()) {
		e.t.Errorf("dead_letters after dedup: got %d, want %d", got, want.invalid())
	}
	// Every dead letter sits at the position of an invalid message, with its reason.
	dl, err := e.conn.Query(context.Background(), "SELECT partition, offset, reason FROM "+db+".dead_letters FINAL")
	if err != nil {
		e.t.Fatal(err)
	}
	for dl.Next() {
		var p uint32
		var o int64
		var r string
		if err := dl.Scan(&p, &o, &r); err != nil {
			e.t.Fatal(err)
		}
		if w := want.reasonAt[fmt.Sprintf("%d/%d", p, o)]; schemas.Reason(r) != w {
			e.t.Errorf("dead letter at %d/%d has reason %q, want %q", p, o, r, w)
		}
	}
	dl.Close()
	rows, err := e.conn.Query(context.Background(), "SELECT reason, count() FROM (SELECT * FROM "+db+".dead_letters FINAL) GROUP BY reason")
	if err != nil {
		e.t.Fatal(err)
	}
	got := map[schemas.Reason]int{}
	for rows.Next() {
		var r string
		var n uint64
		if err := rows.Scan(&r, &n); err != nil {
			e.t.Fatal(err)
		}
		got[schemas.Reason(r)] = int(n)
	}
	rows.Close()
	for _, r := range sim.InvalidReasons {
		if got[r] != want.byReason[r] || got[r] == 0 {
			e.t.Errorf("dead_letters with reason %s: got %d, want %d (> 0)", r, got[r], want.byReason[r])
		}
	}
	// Stored exactly as sent: decode the original and compare with the row.
	outcomes := map[string]schemas.Outcome{"": schemas.OutcomeNone, "success": schemas.OutcomeSuccess, "failure": schemas.OutcomeFailure}
	actors := map[string]schemas.Actor{"": schemas.ActorNone, "user": schemas.ActorUser, "admin": schemas.ActorAdmin, "system": schemas.ActorSystem, "vigil": schemas.ActorVigil}
	ids := make([]string, 0, len(want.sample))
	for id := range want.sample {
		ids = append(ids, id)
	}
	// Rebuild each sampled event from every column of its row.
	stored := map[string]schemas.Event{}
	rows, err = e.conn.Query(context.Background(), "SELECT id, toString(type), time_ns, source, tenant, user_id, session_id, family_id, token_id, parent_token_id, ip, user_agent, device_id, country, asn, toString(outcome), reason, toString(actor), latency_ms, auth_method, sample_rate, attributes.key, attributes.value FROM "+db+".events FINAL WHERE has(?, id)", ids)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var (
			got                  schemas.Event
			typ, outcome, actor  string
			timeNS               int64
			lat                  *float64
			attrKeys, attrValues []string
		)
		if err := rows.Scan(&got.ID, &typ, &timeNS, &got.Source, &got.Tenant, &got.UserID, &got.SessionID, &got.FamilyID, &got.TokenID, &got.ParentTokenID,
			&got.IP, &got.UserAgent, &got.DeviceID, &got.Country, &got.ASN, &outcome, &got.Reason, &actor, &lat, &got.AuthMethod, &got.SampleRate, &attrKeys, &attrValues); err != nil {
			e.t.Fatal(err)
		}
		got.Type, _ = schemas.ParseType(typ)
		got.Time = time.Unix(0, timeNS).UTC()
		got.Outcome, got.Actor = outcomes[outcome], actors[actor]
		if lat != nil {
			got.LatencyMS, got.HasLatency = *lat, true
		}
		for k := range attrKeys {
			got.Attributes = append(got.Attributes, schemas.Attribute{Key: attrKeys[k], Value: attrValues[k]})
		}
		stored[got.ID] = got
	}
	rows.Close()
	subjects := map[string]uint64{}
	rows, err = e.conn.Query(context.Background(), "SELECT id, count() FROM "+db+".event_subjects FINAL WHERE has(?, id) GROUP BY id", ids)
	if err != nil {
		e.t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var n uint64
		if err := rows.Scan(&id, &n); err != nil {
			e.t.Fatal(err)
		}
		subjects[id] = n
	}
	rows.Close()
	for id, raw := range want.sample {
		var ev schemas.Event
		if err := schemas.NewDecoder(schemas.DecoderConfig{}).Decode(raw, &ev); err != nil {
			e.t.Fatal(err)
		}
		if len(ev.Attributes) == 0 {
			ev.Attributes = nil
		}
		if got, ok := stored[id]; !ok || !reflect.DeepEqual(got, ev) {
			e.t.Errorf("event %s stored differently than sent:\nsent %+v\ngot  %+v", id, ev, got)
		}
		// The timeline lookup has one row per subject (a family equal to its session shares its row).
		n := 0
		for _, present := range []bool{ev.SessionID != "", ev.FamilyID != "" && ev.FamilyID != ev.SessionID, ev.UserID != "", ev.IP != ""} {
			if present {
				n++
			}
		}
		if subjects[id] != uint64(n) {
			e.t.Errorf("event %s: %d event_subjects rows, want %d", id, subjects[id], n)
		}
	}
	// The DLQ topic holds every rejected message with its reason headers.
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.ConsumeTopics(dlqTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		e.t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	byReason := map[schemas.Reason]int{}
	total := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for len(seen) < want.invalid() && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			h := map[string]string{}
			for _, x := range r.Headers {
				h[x.Key] = string(x.Value)
			}
			total++
			pos := h["vigil-partition"] + "/" + h["vigil-offset"]
			if h["vigil-topic"] != topic || h["vigil-partition"] == "" || h["vigil-offset"] == "" || h["traceparent"] == "" {
				e.t.Errorf("DLQ record lacks headers: %v", h)
			}
			if w := want.reasonAt[pos]; schemas.Reason(h["vigil-reason"]) != w {
				e.t.Errorf("DLQ record for %s has reason %q, want %q", pos, h["vigil-reason"], w)
			}
			if !seen[pos] {
				seen[pos] = true
				byReason[schemas.Reason(h["vigil-reason"])]++
			}
		})
	}
	if len(seen) != want.invalid() {
		e.t.Errorf("DLQ topic: %d distinct rejected messages, want %d", len(seen), want.invalid())
	}
	if dlqExact && total != want.invalid() {
		e.t.Errorf("DLQ topic: %d records, want exactly %d", total, want.invalid())
	}
	for r, n := range want.byReason {
		if byReason[r] != n {
			e.t.Errorf("DLQ topic reason %s: got %d, want %d", r, byReason[r], n)
		}
	}
}

// TestIngestExactlyOnceAfterDedup is acceptance 1: 100,000 valid events and
// 1,000 invalid messages (every reason) end up exactly once in ClickHouse,
// the dead_letters table and the DLQ topic.
func TestIngestExactlyOnceAfterDedup(t *testing.T) {
	e, _, _ := newEnv(t, false)
	want := newExpect()
	e.produce(sim.NewStream(sim.StreamConfig{Seed: 1, Users: 5000, InvalidEvery: 101}), 101_000, want)
	if want.valid != 100_000 || want.invalid() != 1_000 {
		t.Fatalf("stream: %d valid, %d invalid", want.valid, want.invalid())
	}
	in := e.ingester(ingest.DefaultConfig(), nil)
	waitCaughtUp(t, in, 2*time.Minute, 101_000)
	// Without a rebalance nothing is even inserted twice. (A starved machine
	// can miss heartbeats; the replay that follows is correct but not exact
	// before dedup, so only then is this relaxed.)
	s := in.Stats()
	noReplay := s.Generations == 1
	if noReplay {
		if s.Events != 100_000 || s.Invalid != 1_000 {
			t.Errorf("stats: %+v, want 100000 events and 1000 invalid", s)
		}
		if got := e.scalar("SELECT count() FROM " + e.db + ".events"); got != 100_000 {
			t.Errorf("events rows before dedup: got %d, want 100000", got)
		}
	} else {
		t.Logf("a rebalance happened (%+v); checking the after-dedup guarantees only", s)
	}
	if err := in.Ready(); err != nil {
		t.Errorf("not ready after catching up: %v", err)
	}
	e.checkStored(want, noReplay)
}

// TestClickHouseOutage is acceptance 3: with ClickHouse stopped, vigil keeps
// running, commits nothing, reports not ready and growing lag; when it is
// back, it catches up with nothing lost.
func TestClickHouseOutage(t *testing.T) {
	e, stop, restart := newEnv(t, true)
	want := newExpect()
	s := sim.NewStream(sim.StreamConfig{Seed: 3, Users: 2000, InvalidEvery: 50})
	cfg := ingest.DefaultConfig()
	cfg.BatchSize = 1000
	cfg.QueueSize = 100 // small, so the outage visibly pushes back on Kafka
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.RetryMax = 500 * time.Millisecond
	cfg.LagInterval = 200 * time.Millisecond
	m := ingest.NewMetrics(nil)
	in := e.ingesterWith(cfg, nil, nil, m)

	// A steady stream: 100 chunks of 300 messages, one every 50ms (at least
	// 5s), while ClickHouse goes away and comes back.
	const total = 30_000
	producing := e.produceSteadily(s, total, 300, 50*time.Millisecond, want, nil)
	testenv.WaitFor(t, time.Minute, "some events stored before the outage", func() (bool, string) {
		return in.Stats().Events >= 2_000, fmt.Sprintf("%+v", in.Stats())
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "not ready while ClickHouse is down", func() (bool, string) {
		err := in.Ready()
		return err != nil, fmt.Sprint(err)
	})
	storedAtStop := in.Stats().Events
	lags := func() []ingest.PartitionLag {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l, err := in.Lag(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	sum := func(ls []ingest.PartitionLag) (n int64) {
		for _, l := range ls {
			n += l.Messages
		}
		return n
	}
	before := lags()
	testenv.WaitFor(t, 30*time.Second, "lag to grow and the fetch buffer to fill (push-back)", func() (bool, string) {
		n := sum(lags())
		full := 0
		for p := range 4 {
			if testutil.ToFloat64(m.BufferFill.WithLabelValues(strconv.Itoa(p))) == 1 {
				full++
			}
		}
		return n >= sum(before)+5_000 && full > 0, fmt.Sprintf("lag %d (was %d), %d full buffers", n, sum(before), full)
	})
	if err := in.Ready(); err == nil {
		t.Error("ready while ClickHouse is down")
	}
	after := lags()
	for i := range before { // the group's committed offsets did not move
		if after[i].Committed != before[i].Committed {
			t.Errorf("partition %d: committed offset moved from %d to %d while ClickHouse was down", before[i].Partition, before[i].Committed, after[i].Committed)
		}
	}
	if storedAtStop >= total*49/50 {
		t.Fatalf("everything was stored before ClickHouse stopped (%d); the outage was not mid-stream", storedAtStop)
	}

	if err := restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-producing
	waitCaughtUp(t, in, 2*time.Minute, total)
	testenv.WaitFor(t, 10*time.Second, "ready after ClickHouse is back", func() (bool, string) {
		err := in.Ready()
		return err == nil, fmt.Sprint(err)
	})
	e.checkStored(want, false)
}

// TestRebalance is acceptance 4: under steady production a second member
// joins and later leaves; nothing is lost, no partition is stuck, and the
// drains on each rebalance are clean (committed before the handover, so the
// new owner replays nothing and no row is inserted twice).
func TestRebalance(t *testing.T) {
	e, _, _ := newEnv(t, false)
	want := newExpect()
	s := sim.NewStream(sim.StreamConfig{Seed: 4, Users: 3000, InvalidEvery: 200})
	cfg := ingest.DefaultConfig()
	cfg.BatchSize = 1000
	cfg.FlushInterval = 100 * time.Millisecond
	cfg.LagInterval = 200 * time.Millisecond

	const total = 40_000
	stopProducing := make(chan struct{})
	producing := e.produceSteadily(s, total, 200, 20*time.Millisecond, want, stopProducing)
	a := e.ingester(cfg, nil)
	testenv.WaitFor(t, time.Minute, "first member to ingest", func() (bool, string) {
		return a.Stats().Events > 0, fmt.Sprintf("%+v", a.Stats())
	})

	b := e.ingester(cfg, nil)
	testenv.WaitFor(t, time.Minute, "second member to join and ingest", func() (bool, string) {
		return a.Stats().Generations >= 2 && b.Stats().Events > 0, fmt.Sprintf("a %+v b %+v", a.Stats(), b.Stats())
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, time.Minute, "first member to take the partitions back", func() (bool, string) {
		return a.Stats().Generations >= 3, fmt.Sprintf("a %+v", a.Stats())
	})
	close(stopProducing) // the rest goes out at full speed
	<-producing
	waitCaughtUp(t, a, 2*time.Minute, total)

	// Clean drains: with exactly the expected generations (no rebalance from
	// a starved machine missing heartbeats), nothing was inserted twice.
	clean := a.Stats().Generations == 3 && b.Stats().Generations == 1
	if clean {
		if got := e.scalar("SELECT count() FROM " + e.db + ".events"); got != uint64(want.valid) {
			t.Errorf("events rows before dedup: %d, want %d: a drain did not commit before the handover", got, want.valid)
		}
	} else {
		t.Logf("extra rebalances (a %+v, b %+v); checking the after-dedup guarantees only", a.Stats(), b.Stats())
	}
	e.checkStored(want, clean)
}

// testWriter sends log lines to t.Log until the test ends (kafka-go may
// log from goroutines that outlive their Close).
type testWriter struct {
	t    *testing.T
	done *atomic.Bool
}

func newTestWriter(t *testing.T) testWriter {
	w := testWriter{t: t, done: new(atomic.Bool)}
	t.Cleanup(func() { w.done.Store(true) })
	return w
}

func (w testWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimSpace(string(p)))
	}
	return len(p), nil
}

var _ = strconv.Itoa

// TestStartNamesMissingTopic: a missing DLQ topic is a startup error naming the key.
func TestStartNamesMissingTopic(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{topic: 1})
	in, err := ingest.New(ingest.Options{Config: ingest.DefaultConfig(), Brokers: brokers, Topic: topic, Group: group, DLQTopic: "no-such-dlq", Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	err = in.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "kafka.dlq_topic") || !strings.Contains(err.Error(), "no-such-dlq") {
		t.Fatalf("got %v, want an error naming kafka.dlq_topic", err)
	}
	_ = in.Shutdown(context.Background())
}

type nopSink struct{}

func (nopSink) WriteEvents(context.Context, *ingest.EventColumns) error     { return nil }
func (nopSink) WriteDeadLetters(context.Context, []ingest.DeadLetter) error { return nil }
func (nopSink) Ping(context.Context) error                                  { return nil }
func (nopSink) WriteAnomalies(context.Context, []detect.Anomaly) error      { return nil }

// TestTracesLinkProducers: with tracing on, each batch is a consumer span
// linked to the producers' traceparent headers, continuing a sampled trace,
// with one fetch, decode, insert and commit child each.
func TestTracesLinkProducers(t *testing.T) {
	e, _, _ := newEnv(t, false)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	want := newExpect()
	e.produce(sim.NewStream(sim.StreamConfig{Seed: 5, InvalidEvery: 100}), 2_000, want)
	cfg := ingest.DefaultConfig()
	cfg.BatchSize = 500
	in := e.ingesterWith(cfg, nil, tp.Tracer("vigil"), nil)
	waitCaughtUp(t, in, time.Minute, 2_000)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.Shutdown(ctx); err != nil { // every batch span has ended
		t.Fatal(err)
	}

	producer, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	messages := int64(0)
	children := map[trace.SpanID]map[string]int{} // batch span → child name → count
	var batches, steps []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case topic + " process":
			batches = append(batches, s)
			children[s.SpanContext().SpanID()] = map[string]int{}
		case "fetch", "decode", "insert", "commit":
			steps = append(steps, s)
		default:
			t.Errorf("unexpected span %q kind %v", s.Name(), s.SpanKind())
		}
	}
	for _, s := range batches {
		if s.SpanKind() != trace.SpanKindConsumer {
			t.Errorf("batch span kind %v", s.SpanKind())
		}
		if len(s.Links()) == 0 || s.Links()[0].SpanContext.TraceID() != producer {
			t.Errorf("span %q: links %v, want links to the producer trace", s.Name(), s.Links())
		}
		if s.Parent().TraceID() != producer || s.SpanContext().TraceID() != producer {
			t.Errorf("span does not continue the sampled producer trace: parent %v", s.Parent())
		}
		for _, a := range s.Attributes() {
			if a.Key == attribute.Key("messaging.batch.message_count") {
				messages += a.Value.AsInt64()
			}
		}
	}
	for _, s := range steps {
		c, ok := children[s.Parent().SpanID()]
		if !ok || s.SpanContext().TraceID() != producer {
			t.Errorf("%s span is not a child of a batch span: parent %v", s.Name(), s.Parent())
			continue
		}
		if s.EndTime().Before(s.StartTime()) {
			t.Errorf("%s span ends before it starts", s.Name())
		}
		c[s.Name()]++
	}
	for id, c := range children {
		for _, name := range []string{"fetch", "decode", "insert", "commit"} {
			if c[name] != 1 {
				t.Errorf("batch span %s has %d %s children, want 1", id, c[name], name)
			}
		}
	}
	if len(batches) == 0 || messages != 2_000 {
		t.Errorf("%d batch spans covering %d messages, want spans covering 2000", len(batches), messages)
	}
}
