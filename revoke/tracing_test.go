package revoke_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/revoke"
	"github.com/vigilhq/vigil/revoke/httpapi"
	"github.com/vigilhq/vigil/sim/sessionapi"
)

// TestRevocationTrace: with tracing on, the outbox's publish span is a
// child of the anomaly's span and sets traceparent on the vigil.actions
// message; the revoker continues it in a consumer span with one attempt
// span per call, and the session API receives the attempt's traceparent.
// With tracing off nothing is injected anywhere, even for an anomaly that
// carries a trace context.
func TestRevocationTrace(t *testing.T) {
	for _, on := range []bool{true, false} {
		name := "off"
		if on {
			name = "on"
		}
		t.Run(name, func(t *testing.T) {
			_, brokers := testenv.Kafka(t, map[string]int{"vigil.actions": 1})
			_, conn, db := testenv.MigratedDatabase(t)
			srv, err := sessionapi.New(sessionapi.DefaultConfig(), &target{revoked: map[string]bool{}})
			if err != nil {
				t.Fatal(err)
			}
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()

			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer tp.Shutdown(context.Background())
			var tracer trace.Tracer
			if on {
				tracer = tp.Tracer("vigil")
			}
			cfg := fastConfig()
			cfg.Adapter.URL = hs.URL
			client, err := revoke.NewHTTPClient(cfg.Adapter, cfg.Concurrency)
			if err != nil {
				t.Fatal(err)
			}
			adapter, err := httpapi.New(cfg.Adapter, client)
			if err != nil {
				t.Fatal(err)
			}
			policy, err := revoke.NewPolicy(cfg.Policy)
			if err != nil {
				t.Fatal(err)
			}
			ob, err := revoke.NewOutbox(revoke.OutboxOptions{Policy: policy, Brokers: brokers, Topic: cfg.Topic, Tracer: tracer})
			if err != nil {
				t.Fatal(err)
			}
			defer ob.Close()
			rv, err := revoke.NewRevoker(revoke.RevokerOptions{
				Config: cfg, Brokers: brokers, Adapter: adapter, Store: revoke.NewClickHouseStore(conn, db), Tracer: tracer,
				Raise: func(context.Context, []detect.Anomaly) error { return nil },
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := rv.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := rv.Shutdown(ctx); err != nil {
					t.Errorf("revoker shutdown: %v", err)
				}
			}()

			// The anomaly's span, as the ingester starts it.
			_, aspan := tp.Tracer("ingest").Start(context.Background(), "anomaly")
			a := thefts(1, "trace", time.Minute)[0]
			a.Trace = aspan.SpanContext()
			aspan.End()
			if err := ob.Handle(context.Background(), []detect.Anomaly{a}); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, time.Minute, "the revocation recorded as succeeded", func() (bool, string) {
				n := count(t, conn, "SELECT count() FROM "+db+".actions WHERE status = 'succeeded'")
				return n == 1, ""
			})

			// The vigil.actions message's headers.
			cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(cfg.Topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var msgTP string
			var records int
			for records == 0 && ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					records++
					for _, hd := range r.Headers {
						if hd.Key == "traceparent" {
							msgTP = string(hd.Value)
						}
					}
				})
			}
			if records != 1 {
				t.Fatalf("%d records on %s, want 1", records, cfg.Topic)
			}
			got := srv.Traceparents()
			if len(got) != 1 {
				t.Fatalf("the session API received %d requests, want 1", len(got))
			}

			if !on {
				if msgTP != "" || got[0] != "" {
					t.Errorf("tracing off: traceparent %q on the message, %q on the request; want none", msgTP, got[0])
				}
				if n := len(rec.Ended()); n != 1 { // the test's own anomaly span
					t.Errorf("tracing off: %d spans recorded, want only the test's", n)
				}
				return
			}
			spans := map[string]sdktrace.ReadOnlySpan{}
			for _, s := range rec.Ended() {
				if _, dup := spans[s.Name()]; dup {
					t.Errorf("two %q spans", s.Name())
				}
				spans[s.Name()] = s
			}
			pub, proc, att := spans[cfg.Topic+" publish"], spans[cfg.Topic+" process"], spans["revoke attempt"]
			if pub == nil || proc == nil || att == nil {
				t.Fatalf("spans %v: want publish, process and attempt spans", keys(spans))
			}
			tid := a.Trace.TraceID()
			for _, c := range []struct {
				span   sdktrace.ReadOnlySpan
				parent trace.SpanID
				kind   trace.SpanKind
			}{{pub, a.Trace.SpanID(), trace.SpanKindProducer}, {proc, pub.SpanContext().SpanID(), trace.SpanKindConsumer}, {att, proc.SpanContext().SpanID(), trace.SpanKindClient}} {
				if c.span.SpanContext().TraceID() != tid || c.span.Parent().SpanID() != c.parent || c.span.SpanKind() != c.kind {
					t.Errorf("%s: trace %s parent %s kind %v; want trace %s parent %s kind %v", c.span.Name(),
						c.span.SpanContext().TraceID(), c.span.Parent().SpanID(), c.span.SpanKind(), tid, c.parent, c.kind)
				}
			}
			if want := "00-" + tid.String() + "-" + pub.SpanContext().SpanID().String() + "-01"; msgTP != want {
				t.Errorf("vigil.actions traceparent %q, want %q", msgTP, want)
			}
			if want := "00-" + tid.String() + "-" + att.SpanContext().SpanID().String() + "-01"; got[0] != want {
				t.Errorf("session API traceparent %q, want %q", got[0], want)
			}
			attrs := map[string]string{}
			for _, kv := range att.Attributes() {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			if attrs["vigil.revoke.attempt"] != "1" || attrs["vigil.revoke.adapter"] != "http" || attrs["vigil.revoke.outcome"] != "done" || attrs["http.response.status_code"] != "201" {
				t.Errorf("attempt span attributes %v", attrs)
			}
			for _, s := range []sdktrace.ReadOnlySpan{pub, proc, att} {
				for _, kv := range s.Attributes() {
					v := kv.Value.Emit()
					for _, id := range []string{a.UserID, a.SessionID, a.FamilyID, a.IP} {
						if strings.Contains(v, id) {
							t.Errorf("%s: attribute %s = %q names the subject", s.Name(), kv.Key, v)
						}
					}
				}
			}
		})
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
