package ingest

import (
	"context"
	"strconv"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// maxLinks bounds the producer trace contexts linked from one batch span.
const maxLinks = 64

// headerCarrier reads W3C trace context from Kafka record headers.
type headerCarrier []kafka.Header

// Get returns the value of the first header named key.
func (c headerCarrier) Get(key string) string {
	for _, h := range c {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set is unused: vigil only reads trace context from records.
func (c headerCarrier) Set(string, string) {}

// Keys lists the header names.
func (c headerCarrier) Keys() []string {
	ks := make([]string, len(c))
	for i, h := range c {
		ks[i] = h.Key
	}
	return ks
}

var traceContext = propagation.TraceContext{}

// linkFrom returns a link to the producer's span when m carries a valid
// traceparent header.
func linkFrom(m *kafka.Message) (trace.Link, bool) {
	if len(m.Headers) == 0 {
		return trace.Link{}, false
	}
	sc := trace.SpanContextFromContext(traceContext.Extract(context.Background(), headerCarrier(m.Headers)))
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// startBatchSpan starts the "<topic> process" consumer span of one batch,
// linked to the traces of (up to maxLinks of) its messages, following the
// OpenTelemetry messaging conventions for batch processing. A batch whose
// first message was sampled by its producer continues that trace as parent.
func (in *Ingester) startBatchSpan(ctx context.Context, partition int, w *work) (context.Context, trace.Span) {
	if len(w.links) > 0 && w.links[0].SpanContext.IsSampled() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, w.links[0].SpanContext)
	}
	return in.tracer.Start(ctx, in.o.Topic+" process",
		trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithLinks(w.links...),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "process"),
			attribute.String("messaging.destination.name", in.o.Topic),
			attribute.String("messaging.destination.partition.id", strconv.Itoa(partition)),
			attribute.String("messaging.consumer.group.name", in.o.Group),
			attribute.Int("messaging.batch.message_count", w.events.Len()+len(w.dead)),
			attribute.Int("vigil.dead_letters", len(w.dead)),
			attribute.Int64("messaging.kafka.offset.last", w.lastOffset),
		))
}

// endBatchSpan ends the span, marking it failed when the batch was not made durable.
func endBatchSpan(span trace.Span, ok bool) {
	if !ok {
		span.SetStatus(codes.Error, "batch not persisted; it will be replayed")
	}
	span.End()
}
