package revoke

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/telemetry"
	"github.com/vigilhq/vigil/pseudonym"
)

// OutboxOptions configure an Outbox.
type OutboxOptions struct {
	// Policy decides the action for each anomaly.
	Policy *Policy
	// Brokers and Topic locate the outbox topic.
	Brokers []string
	Topic   string
	// Transport carries the produce requests (TLS, SASL); nil uses a plain one.
	Transport kafka.RoundTripper
	// Tracer, when set, records a "<topic> publish" producer span per
	// intent, child of its anomaly's span (Anomaly.Trace) when it has one,
	// and sets its traceparent and tracestate headers on the message; nil
	// disables tracing.
	Tracer trace.Tracer
	// Metrics, Logger and Now default to unregistered metrics, a discarding logger and time.Now.
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Outbox produces the intents of revoking actions to the outbox topic.
// Handle is safe for concurrent use by every partition worker and the
// window runner; it returns only when the intents are durable in Kafka
// (acknowledged by all in-sync replicas).
type Outbox struct {
	o  OutboxOptions
	w  *kafka.Writer
	tr *kafka.Transport // owned when OutboxOptions.Transport was nil
}

// NewOutbox returns an Outbox; Close it when done.
func NewOutbox(o OutboxOptions) (*Outbox, error) {
	if o.Policy == nil || len(o.Brokers) == 0 || o.Topic == "" {
		return nil, fmt.Errorf("revoke: outbox needs a policy, brokers and a topic")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	ob := &Outbox{o: o}
	if o.Transport == nil {
		ob.tr = &kafka.Transport{ClientID: "vigil-outbox"}
		o.Transport = ob.tr
	}
	ob.w = &kafka.Writer{
		Addr: kafka.TCP(o.Brokers...), Topic: o.Topic, Balancer: &kafka.Hash{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000,
		Transport: o.Transport, AllowAutoTopicCreation: false,
	}
	return ob, nil
}

// Intents returns the intents of the revoking actions the policy decides
// for as, at now; alert_only anomalies yield none.
func (ob *Outbox) Intents(as []detect.Anomaly, now time.Time) []Intent {
	out, _ := ob.intents(as, now)
	return out
}

// intents is Intents, with the index in as of each intent's anomaly.
func (ob *Outbox) intents(as []detect.Anomaly, now time.Time) (out []Intent, from []int) {
	for i := range as {
		act, rule := ob.o.Policy.Decide(&as[i])
		if act == AlertOnly {
			continue
		}
		in := NewIntent(&as[i], act, rule, now)
		if strings.HasPrefix(in.Subject(), pseudonym.Prefix) {
			// Pseudonymized and not known in clear (a window detector's
			// anomaly over stored events): the session API would not know
			// the subject. A person must act on it.
			ob.o.Logger.Warn("not revoking: the subject is known only by its pseudonym; revoke it by hand",
				"anomaly_id", as[i].ID, "detector", as[i].Detector, "scope", in.Scope, "subject", in.Subject())
			continue
		}
		out = append(out, in)
		from = append(from, i)
	}
	return out, from
}

// Handle decides the actions for as and produces their intents, keyed by
// subject so that one subject's intents stay in order. It is the ingest
// hand-off: an error means the batch must not be committed (it is retried,
// and the intents' ids make the retry harmless).
func (ob *Outbox) Handle(ctx context.Context, as []detect.Anomaly) error {
	intents, from := ob.intents(as, ob.o.Now())
	if len(intents) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, len(intents))
	var spans []trace.Span
	if ob.o.Tracer != nil {
		spans = make([]trace.Span, len(intents))
	}
	for i := range intents {
		b, err := json.Marshal(&intents[i])
		if err != nil {
			endSpans(spans, err)
			return fmt.Errorf("revoke: encode intent: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(intents[i].SubjectKey()), Value: b}
		if spans != nil {
			spans[i] = ob.tracePublish(ctx, &as[from[i]], &intents[i], &msgs[i])
		}
	}
	if err := ob.w.WriteMessages(ctx, msgs...); err != nil {
		err = fmt.Errorf("revoke: produce %d intents to %s: %w", len(msgs), ob.o.Topic, err)
		endSpans(spans, err)
		return err
	}
	endSpans(spans, nil)
	for i := range intents {
		ob.o.Metrics.Intents.WithLabelValues(string(intents[i].Action)).Inc()
		ob.o.Logger.Info("action intent", "id", intents[i].ID, "action", intents[i].Action, "anomaly_id", intents[i].AnomalyID, "reason", intents[i].Reason)
	}
	return nil
}

// tracePublish starts the producer span of intent in's message m, child
// of anomaly a's span when it has one, and sets m's trace headers. Its
// attributes name the action, never the subject.
func (ob *Outbox) tracePublish(ctx context.Context, a *detect.Anomaly, in *Intent, m *kafka.Message) trace.Span {
	if a.Trace.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, a.Trace)
	}
	ctx, span := ob.o.Tracer.Start(ctx, ob.o.Topic+" publish",
		trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(
			attribute.String("messaging.system", "kafka"),
			attribute.String("messaging.operation.type", "send"),
			attribute.String("messaging.destination.name", ob.o.Topic),
			attribute.String("vigil.action", string(in.Action)),
			attribute.String("vigil.action.id", in.ID),
			attribute.String("vigil.anomaly.id", in.AnomalyID),
		))
	telemetry.InjectHeaders(ctx, &m.Headers)
	return span
}

// endSpans ends the spans that are not nil, failed with err when it is not nil.
func endSpans(spans []trace.Span, err error) {
	for _, s := range spans {
		if s == nil {
			continue
		}
		if err != nil {
			s.SetStatus(codes.Error, err.Error())
		}
		s.End()
	}
}

// Close flushes and closes the producer.
func (ob *Outbox) Close() error {
	err := ob.w.Close()
	if ob.tr != nil {
		ob.tr.CloseIdleConnections()
	}
	return err
}

// CheckTopic fails, naming the config key, when the outbox topic does not
// exist: vigil never creates topics implicitly.
func CheckTopic(ctx context.Context, brokers []string, transport kafka.RoundTripper, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if transport == nil {
		tr := &kafka.Transport{ClientID: "vigil"}
		defer tr.CloseIdleConnections()
		transport = tr
	}
	c := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport, Timeout: 10 * time.Second}
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("revoke: kafka metadata from %v (kafka.brokers): %w", brokers, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error == nil && len(t.Partitions) > 0 {
			return nil
		}
		err = t.Error
	}
	if err == nil {
		err = fmt.Errorf("not in metadata")
	}
	return fmt.Errorf("revoke: outbox topic %q (revoke.topic) is not usable: %w; create it first (one partition keeps the guardrails global)", topic, err)
}
