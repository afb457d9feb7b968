package ingest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
)

// TestAnomalySpans: an anomaly's span is a child of its event's producer
// span when the producer sampled its trace (linked to the batch span),
// else of the batch span; the anomaly handed on carries the span's
// context; and no attribute names the subject.
func TestAnomalySpans(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags string // of the replay's traceparent; "" sends none
	}{
		{"sampled producer", "01"},
		{"unsampled producer", "00"},
		{"no traceparent", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := newEnv(t, false)
			rec := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
			defer tp.Shutdown(context.Background())

			created, rotation, replay := testenv.TokenTheft(time.Now().UTC().Add(-time.Minute))
			const traceID, spanID = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
			var recs []*kgo.Record
			for _, ev := range []schemas.Event{created, rotation, replay} {
				recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(ev.FamilyID), Value: schemas.AppendJSON(nil, &ev)})
			}
			if tc.flags != "" {
				recs[2].Headers = []kgo.RecordHeader{{Key: "traceparent", Value: []byte("00-" + traceID + "-" + spanID + "-" + tc.flags)}}
			}
			cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			var handed anomalySink
			in := e.detectingIngesterWith(detecting{group: group, handed: &handed, tracer: tp.Tracer("vigil")})
			testenv.WaitFor(t, time.Minute, "the replay judged and committed", func() (bool, string) {
				s := in.Stats()
				return s.Events == 3 && s.Commits >= 1 && len(handed.ids()) == 1, ""
			})
			shutdown(t, in)

			var anomaly sdktrace.ReadOnlySpan
			batches := map[trace.SpanID]bool{}
			for _, s := range rec.Ended() {
				switch s.Name() {
				case "anomaly":
					if anomaly != nil {
						t.Fatalf("two anomaly spans")
					}
					anomaly = s
				case topic + " process":
					batches[s.SpanContext().SpanID()] = true
				}
			}
			if anomaly == nil {
				t.Fatal("no anomaly span")
			}
			if got := handed.as[0].Trace; !got.Equal(anomaly.SpanContext()) {
				t.Errorf("the handed-on anomaly carries trace %v, want its span's %v", got, anomaly.SpanContext())
			}
			if tc.flags == "01" {
				if p := anomaly.Parent(); p.TraceID().String() != traceID || p.SpanID().String() != spanID || !p.IsRemote() {
					t.Errorf("anomaly span parent %v, want the replay's producer span", p)
				}
				if l := anomaly.Links(); len(l) != 1 || !batches[l[0].SpanContext.SpanID()] {
					t.Errorf("anomaly span links %v, want its batch span", l)
				}
			} else if !batches[anomaly.Parent().SpanID()] {
				t.Errorf("anomaly span parent %v, want a batch span", anomaly.Parent())
			}
			attrs := map[string]string{}
			for _, a := range anomaly.Attributes() {
				attrs[string(a.Key)] = a.Value.Emit()
			}
			if attrs["vigil.anomaly.detector"] != "token_reuse" || attrs["vigil.anomaly.kind"] != "replay_other_client" ||
				attrs["vigil.anomaly.severity"] != "critical" || attrs["vigil.anomaly.id"] != handed.as[0].ID {
				t.Errorf("anomaly span attributes %v", attrs)
			}
			for k, v := range attrs {
				for _, id := range []string{replay.UserID, replay.SessionID, replay.FamilyID, replay.IP, replay.TokenID, replay.ParentTokenID} {
					if v == id || strings.Contains(v, replay.IP) {
						t.Errorf("attribute %s = %q names the subject", k, v)
					}
				}
			}
		})
	}
}
