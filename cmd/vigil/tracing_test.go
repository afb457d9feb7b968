package main

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/sim/sessionapi"
)

// kgoCarrier writes trace headers onto a franz-go record, as a session
// service's producer would.
type kgoCarrier struct{ r *kgo.Record }

func (c kgoCarrier) Get(string) string { return "" }
func (c kgoCarrier) Set(k, v string) {
	c.r.Headers = append(c.r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
}
func (c kgoCarrier) Keys() []string { return nil }

// TestTraceFromProducerToRevocation is issue 13's acceptance 2: in-process
// `vigil run` (tracing into an in-memory recorder), kfake over TCP, the
// ClickHouse test server and the simulator's session API. A token theft
// whose replay carries its producer's sampled traceparent gives one trace:
// producer → batch span (fetch, decode, insert, commit children) and
// anomaly span → vigil.actions publish → vigil.actions process → revoke
// attempt → the session API's request, whose traceparent names the attempt.
func TestTraceFromProducerToRevocation(t *testing.T) {
	_, brokers := testenv.Kafka(t, map[string]int{"session-events": 1, "vigil.dlq": 1, "vigil.actions": 1})
	srv, conn, db := testenv.MigratedDatabase(t)
	api, err := sessionapi.New(sessionapi.DefaultConfig(), targetFunc(func(sessionapi.Request) sessionapi.Outcome { return sessionapi.Revoked }))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.Handler())
	defer hs.Close()

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)) // parent-based, always sampling roots
	defer tp.Shutdown(context.Background())

	envs := map[string]string{
		"VIGIL_KAFKA_BROKERS":             strings.Join(brokers, ","),
		"VIGIL_CLICKHOUSE_ADDR":           srv.Addr(),
		"VIGIL_CLICKHOUSE_DATABASE":       db,
		"VIGIL_ADMIN_LISTEN":              "",
		"VIGIL_INGEST_FLUSH_INTERVAL":     "50ms",
		"VIGIL_KAFKA_SESSION_TIMEOUT":     "6s",
		"VIGIL_KAFKA_HEARTBEAT_INTERVAL":  "500ms",
		"VIGIL_INGEST_DRAIN_TIMEOUT":      "3s",
		"VIGIL_REVOKE_ADAPTER_KIND":       "http",
		"VIGIL_REVOKE_ADAPTER_URL":        hs.URL,
		"VIGIL_REVOKE_ADAPTER_ALLOW_HTTP": "true",
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		getenv := func(k string) (string, bool) { v, ok := envs[k]; return v, ok }
		done <- runWithEnv(ctx, []string{"run", "--no-migrate"}, &cmdEnv{stdin: strings.NewReader(""), stdout: &out, stderr: &out, getenv: getenv, tracerProvider: tp})
	}()
	stopped := false
	stopRun := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("vigil run: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("vigil run did not stop within a minute of its context's end")
		}
	}
	defer stopRun()
	defer func() {
		if t.Failed() {
			t.Logf("vigil run output:\n%s", out.String())
		}
	}()

	// The session service publishes the theft; its producer samples the replay.
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("session-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	evs, recs := theftRecords(time.Now().UTC().Add(-time.Minute))
	created, replay := evs[0], evs[2]
	pctx, producer := tp.Tracer("session-service").Start(context.Background(), "session-events publish", trace.WithSpanKind(trace.SpanKindProducer))
	propagation.TraceContext{}.Inject(pctx, kgoCarrier{recs[2]})
	producer.End()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 2*time.Minute, "the revocation recorded as succeeded", func() (bool, string) {
		n := count(t, conn, "SELECT count() FROM "+db+".actions WHERE status = 'succeeded'")
		return n == 1, fmt.Sprintf("%d succeeded rows, %d requests at the session API", n, len(api.Traceparents()))
	})
	stopRun() // every span has ended once vigil run has returned

	tid, pid := producer.SpanContext().TraceID(), producer.SpanContext().SpanID()
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() == tid {
			byName[s.Name()] = append(byName[s.Name()], s)
		}
	}
	one := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		if n := len(byName[name]); n != 1 {
			names := []string{}
			for k, v := range byName {
				names = append(names, fmt.Sprintf("%s×%d", k, len(v)))
			}
			t.Fatalf("%d %q spans in the producer's trace, want 1; the trace has %v", n, name, names)
		}
		return byName[name][0]
	}
	childOf := func(s sdktrace.ReadOnlySpan, parent trace.SpanID, kind trace.SpanKind) {
		t.Helper()
		if s.Parent().SpanID() != parent || s.SpanKind() != kind {
			t.Errorf("%s: parent %s kind %v, want parent %s kind %v", s.Name(), s.Parent().SpanID(), s.SpanKind(), parent, kind)
		}
	}
	batch := one("session-events process")
	childOf(batch, pid, trace.SpanKindConsumer)
	for _, step := range []string{"fetch", "decode", "insert", "commit"} {
		childOf(one(step), batch.SpanContext().SpanID(), trace.SpanKindInternal)
	}
	anomaly := one("anomaly")
	childOf(anomaly, pid, trace.SpanKindInternal)
	if l := anomaly.Links(); len(l) != 1 || l[0].SpanContext.SpanID() != batch.SpanContext().SpanID() {
		t.Errorf("anomaly span links %v, want its batch span", l)
	}
	publish := one("vigil.actions publish")
	childOf(publish, anomaly.SpanContext().SpanID(), trace.SpanKindProducer)
	process := one("vigil.actions process")
	childOf(process, publish.SpanContext().SpanID(), trace.SpanKindConsumer)
	attempt := one("revoke attempt")
	childOf(attempt, process.SpanContext().SpanID(), trace.SpanKindClient)

	tps := api.Traceparents()
	if want := "00-" + tid.String() + "-" + attempt.SpanContext().SpanID().String() + "-01"; len(tps) != 1 || tps[0] != want {
		t.Fatalf("the session API received traceparent %q, want one request with %q", tps, want)
	}

	t.Logf("one trace %s: producer %s → %s (fetch, decode, insert, commit) → anomaly → vigil.actions publish → vigil.actions process → revoke attempt %s → session API got traceparent %s",
		tid, pid, batch.Name(), attempt.SpanContext().SpanID(), tps[0])

	// No attribute of the trace names the subject.
	for _, spans := range byName {
		for _, s := range spans {
			for _, kv := range s.Attributes() {
				v := kv.Value.Emit()
				for _, id := range []string{replay.UserID, replay.SessionID, replay.FamilyID, replay.IP, replay.TokenID, replay.ParentTokenID, created.IP} {
					if v == id || strings.Contains(v, replay.IP) || strings.Contains(v, created.IP) {
						t.Errorf("%s: attribute %s = %q names the subject", s.Name(), kv.Key, v)
					}
				}
			}
		}
	}
}
