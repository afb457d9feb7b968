package ingest

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/internal/telemetry"
)

// maxLinks bounds the producer trace contexts linked from one batch span.
const maxLinks = 64

// Names of the child spans of a batch span.
const (
	spanFetch  = "fetch"
	spanDecode = "decode"
	spanInsert = "insert"
	spanCommit = "commit"
	// spanAnomaly is the span of one anomaly, from the read of its event
	// until it is stored and handed on.
	spanAnomaly = "anomaly"
)

// linkFrom returns a link to the producer's span when m carries a valid
// traceparent header.
func linkFrom(m *kafka.Message) (trace.Link, bool) {
	sc := telemetry.SpanContextFromHeaders(m.Headers)
	if !sc.IsValid() {
		return trace.Link{}, false
	}
	return trace.Link{SpanContext: sc}, true
}

// sampledParent returns the trace context of m's producer when it sampled
// its trace, else the zero SpanContext.
func sampledParent(m *kafka.Message) trace.SpanContext {
	if sc := telemetry.SpanContextFromHeaders(m.Headers); sc.IsSampled() {
		return sc
	}
	return trace.SpanContext{}
}

// startBatchSpan starts the "<topic> process" consumer span of one batch,
// linked to the traces of (up to maxLinks of) its messages, following the
// OpenTelemetry messaging conventions for batch processing. It starts
// when the batch's first message was taken from the fetch buffer. A batch
// with a message whose producer sampled its trace continues the first such
// trace as parent.
func (in *Ingester) startBatchSpan(ctx context.Context, partition int, w *work) (context.Context, trace.Span) {
	for _, l := range w.links {
		if l.SpanContext.IsSampled() {
			ctx = trace.ContextWithRemoteSpanContext(ctx, l.SpanContext)
			break
		}
	}
	opts := []trace.SpanStartOption{
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
			attribute.Int("vigil.anomalies", len(w.anomalies)),
			attribute.Int64("messaging.kafka.offset.last", w.lastOffset),
		),
	}
	if !w.openedAt.IsZero() {
		opts = append(opts, trace.WithTimestamp(w.openedAt))
	}
	return in.tracer.Start(ctx, in.o.Topic+" process", opts...)
}

// traceIntake records, when the batch span is sampled, its fetch and
// decode children after the fact, from the times the worker noted: fetch
// from the batch's first message taken from the fetch buffer to its last,
// decode over the same messages with the time spent decoding and judging
// them (they interleave: the worker decodes each message as it arrives).
func (in *Ingester) traceIntake(ctx context.Context, span trace.Span, w *work) {
	if !span.IsRecording() || w.openedAt.IsZero() {
		return
	}
	n := w.events.Len() + len(w.dead)
	_, f := in.tracer.Start(ctx, spanFetch, trace.WithTimestamp(w.openedAt), trace.WithAttributes(
		attribute.Int("messaging.batch.message_count", n),
		attribute.Int("messaging.message.body.size", w.bytes),
	))
	f.End(trace.WithTimestamp(w.lastAt))
	_, d := in.tracer.Start(ctx, spanDecode, trace.WithTimestamp(w.openedAt), trace.WithAttributes(
		attribute.Int("vigil.events", w.events.Len()),
		attribute.Int("vigil.dead_letters", len(w.dead)),
		attribute.Int64("vigil.decode.busy_ns", w.decodeBusy.Nanoseconds()),
	))
	d.End(trace.WithTimestamp(w.lastAt))
}

// startStep starts a child span of the batch span in ctx when that one is
// sampled; nil otherwise.
func (in *Ingester) startStep(ctx context.Context, batch trace.Span, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if batch == nil || !batch.IsRecording() {
		return ctx, nil
	}
	return in.tracer.Start(ctx, name, trace.WithAttributes(attrs...))
}

// endStep ends a span of startStep, failed when err is not "".
func endStep(span trace.Span, err string) {
	if span == nil {
		return
	}
	if err != "" {
		span.SetStatus(codes.Error, err)
	}
	span.End()
}

// startAnomalySpans starts one span per anomaly of the batch, child of
// its event's producer context when that was sampled (linked to the batch
// span), else of the batch span in ctx, starting when the event was read,
// and gives each anomaly its span's context, which the outbox continues.
// Attributes describe the finding, never its subject.
func (in *Ingester) startAnomalySpans(ctx context.Context, batch trace.Span, w *work) {
	for i := range w.anomalies {
		a := &w.anomalies[i]
		parent := ctx
		opts := []trace.SpanStartOption{
			trace.WithTimestamp(w.readAt[i]),
			trace.WithAttributes(
				attribute.String("vigil.anomaly.id", a.ID),
				attribute.String("vigil.anomaly.detector", a.Detector),
				attribute.String("vigil.anomaly.kind", a.Kind),
				attribute.String("vigil.anomaly.severity", a.Severity.String()),
				attribute.Bool("vigil.anomaly.shadow", a.Shadow),
				attribute.Int64("messaging.kafka.offset", a.Offset),
			),
		}
		if sc := w.parents[i]; sc.IsValid() {
			parent = trace.ContextWithRemoteSpanContext(ctx, sc)
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: batch.SpanContext()}))
		}
		_, s := in.tracer.Start(parent, spanAnomaly, opts...)
		a.Trace = s.SpanContext()
		w.spans = append(w.spans, s)
	}
}

// endAnomalySpans ends the batch's anomaly spans still open, failed when
// err is not "".
func endAnomalySpans(w *work, err string) {
	for i, s := range w.spans {
		if s == nil {
			continue
		}
		if err != "" {
			s.SetStatus(codes.Error, err)
		}
		s.End()
		w.spans[i] = nil
	}
}

// endBatchSpan ends the span, marking it failed when the batch was not made durable.
func endBatchSpan(span trace.Span, ok bool) {
	if !ok {
		span.SetStatus(codes.Error, "batch not persisted; it will be replayed")
	}
	span.End()
}

// noteRead records, when tracing, that a message was taken from the fetch
// buffer at t0 and decoded (and judged) by t1.
func (w *work) noteRead(t0, t1 time.Time) {
	if w.openedAt.IsZero() {
		w.openedAt = t0
	}
	w.lastAt = t1
	w.decodeBusy += t1.Sub(t0)
}
