package telemetry

import (
	"context"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceContext is the W3C Trace Context propagator (traceparent and
// tracestate) vigil reads from and writes to Kafka headers and HTTP requests.
var TraceContext = propagation.TraceContext{}

// KafkaCarrier adapts a Kafka message's headers to propagation.TextMapCarrier.
type KafkaCarrier struct {
	// Headers are the message's headers; Set replaces or appends to them.
	Headers *[]kafka.Header
}

// Get returns the value of the first header named key, or "".
func (c KafkaCarrier) Get(key string) string {
	for _, h := range *c.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

// Set replaces the header named key, or appends it.
func (c KafkaCarrier) Set(key, value string) {
	for i, h := range *c.Headers {
		if h.Key == key {
			(*c.Headers)[i].Value = []byte(value)
			return
		}
	}
	*c.Headers = append(*c.Headers, kafka.Header{Key: key, Value: []byte(value)})
}

// Keys lists the header names.
func (c KafkaCarrier) Keys() []string {
	ks := make([]string, len(*c.Headers))
	for i, h := range *c.Headers {
		ks[i] = h.Key
	}
	return ks
}

// SpanContextFromHeaders returns the trace context of a Kafka message's
// traceparent and tracestate headers; the zero SpanContext (not valid)
// when it carries none or an unreadable one.
func SpanContextFromHeaders(headers []kafka.Header) trace.SpanContext {
	if len(headers) == 0 {
		return trace.SpanContext{}
	}
	return trace.SpanContextFromContext(TraceContext.Extract(context.Background(), KafkaCarrier{&headers}))
}

// InjectHeaders sets the traceparent and tracestate headers of the span
// context in ctx on headers; it sets nothing when ctx carries no valid one.
func InjectHeaders(ctx context.Context, headers *[]kafka.Header) {
	TraceContext.Inject(ctx, KafkaCarrier{headers})
}
