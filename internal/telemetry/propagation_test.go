package telemetry

import (
	"context"
	"testing"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/trace"
)

// TestKafkaHeadersRoundTrip: a span context injected into Kafka headers
// (replacing a stale traceparent) is extracted unchanged; headers without
// one, or with a malformed one, give an invalid context; a context without
// a span injects nothing.
func TestKafkaHeadersRoundTrip(t *testing.T) {
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	hs := []kafka.Header{{Key: "traceparent", Value: []byte("00-00000000000000000000000000000001-0000000000000001-00")}, {Key: "other", Value: []byte("x")}}
	InjectHeaders(trace.ContextWithSpanContext(context.Background(), sc), &hs)
	if len(hs) != 2 {
		t.Fatalf("headers %v: want the traceparent replaced, not added", hs)
	}
	got := SpanContextFromHeaders(hs)
	if !got.Equal(sc.WithRemote(true)) {
		t.Errorf("extracted %v, want %v", got, sc)
	}
	if SpanContextFromHeaders(nil).IsValid() || SpanContextFromHeaders([]kafka.Header{{Key: "traceparent", Value: []byte("garbage")}}).IsValid() {
		t.Error("a valid context from no or a malformed traceparent")
	}
	var none []kafka.Header
	InjectHeaders(context.Background(), &none)
	if len(none) != 0 {
		t.Errorf("a context without a span injected %v", none)
	}
}
