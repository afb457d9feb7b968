package revoke

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/time/rate"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/internal/telemetry"
	"github.com/vigilhq/vigil/pseudonym"
)

// Detector and kinds of the anomalies the revoker raises itself.
const (
	DetectorRevoke       = "revoke"
	KindRevocationHalted = "revocation_halted"
	KindRevocationFailed = "revocation_failed"
)

// finalHorizon is how far back the ids of final actions are loaded on
// taking over the outbox: an intent older than this and still uncommitted
// would be sent again (under the same idempotency key).
const finalHorizon = 7 * 24 * time.Hour

// RevokerOptions configure a Revoker.
type RevokerOptions struct {
	// Config is the revoke section; it must be valid.
	Config Config
	// Brokers locate the outbox topic (Config.Topic); Dialer carries TLS and SASL.
	Brokers []string
	Dialer  *kafka.Dialer
	// SessionTimeout, RebalanceTimeout and HeartbeatInterval tune the
	// consumer group like the ingest group's (kafka.*); zero uses kafka-go's defaults.
	SessionTimeout, RebalanceTimeout, HeartbeatInterval time.Duration
	// Adapter sends revocations; nil means no session API: every action is recorded as dry_run.
	Adapter Adapter
	// Store makes actions rows durable and reads the past back on take-over.
	Store Store
	// Raise makes the revoker's own anomalies durable (revocation_halted,
	// revocation_failed); it is retried until it succeeds.
	Raise func(ctx context.Context, as []detect.Anomaly) error
	// Pseudonyms, when enabled, is the key the stored actions name their
	// subjects under (privacy.key_file): the cool-down compares subjects
	// by pseudonym, so that the history read back from ClickHouse matches.
	Pseudonyms pseudonym.Key
	// Tracer, when set, records a "<topic> process" consumer span per
	// outbox message, continuing the trace of its traceparent header, with
	// one "revoke attempt" client span per call to the adapter, whose
	// context the adapters' requests carry (revoke.Do sets traceparent);
	// nil disables tracing.
	Tracer trace.Tracer
	// Metrics, Logger and Now default to unregistered metrics, a discarding logger and time.Now.
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// Revoker is the consumer of the outbox: the `respond` role of vigil run.
// Start returns at once; Shutdown stops fetching, lets the calls in flight
// end (bounded by its context), flushes the audit rows and commits what is
// final. Actions still retrying at shutdown are left uncommitted: the next
// owner of the partition resumes them under the same idempotency key.
type Revoker struct {
	o       RevokerOptions
	cfg     Config
	log     *slog.Logger
	m       *Metrics
	guard   *Guard
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[Result]
	adapter string
	sem     chan struct{}
	audit   *auditor

	fmu      sync.Mutex
	final    map[string]time.Time // action ids with a final row → when learnt
	inflight map[string]struct{}  // action ids being sent

	group     *kafka.ConsumerGroup
	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup // group loop and partition consumers
	stopPoll  chan struct{}  // closed at shutdown: ends the resume poller
	pollDone  chan struct{}
	consuming atomic.Bool
	started   atomic.Bool
	stopOnce  sync.Once
	stopped   chan struct{}
	stopErr   error
}

// NewRevoker validates o and returns a Revoker.
func NewRevoker(o RevokerOptions) (*Revoker, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if len(o.Brokers) == 0 || o.Store == nil {
		return nil, errors.New("revoke: revoker needs brokers and a store")
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
	if o.Raise == nil {
		o.Raise = func(context.Context, []detect.Anomaly) error { return nil }
	}
	c := o.Config
	r := &Revoker{
		o: o, cfg: c, log: o.Logger, m: o.Metrics,
		guard:    NewGuard(c, o.Adapter == nil).withPseudonyms(o.Pseudonyms),
		limiter:  rate.NewLimiter(rate.Limit(c.RateLimit), c.RateBurst),
		sem:      make(chan struct{}, c.Concurrency),
		final:    map[string]time.Time{},
		inflight: map[string]struct{}{},
		adapter:  c.Adapter.Kind,
		stopped:  make(chan struct{}),
	}
	r.audit = newAuditor(o.Store, o.Metrics, o.Logger, c.RetryInitial, c.RetryMax)
	if o.Adapter != nil {
		endpoint := o.Adapter.Endpoint()
		r.breaker = gobreaker.NewCircuitBreaker[Result](gobreaker.Settings{
			Name:        endpoint,
			MaxRequests: 1,
			Timeout:     c.BreakerOpen,
			ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= uint32(c.BreakerFailures) },
			OnStateChange: func(name string, from, to gobreaker.State) {
				open := 0.0
				if to != gobreaker.StateClosed {
					open = 1
				}
				o.Metrics.CircuitOpen.WithLabelValues(name).Set(open)
				o.Logger.Warn("session API circuit breaker", "endpoint", name, "from", from.String(), "to", to.String())
			},
		})
		o.Metrics.CircuitOpen.WithLabelValues(endpoint).Set(0)
	} else {
		r.adapter = AdapterNone
	}
	return r, nil
}

// Guard returns the revoker's guardrails (for status reporting).
func (r *Revoker) Guard() *Guard { return r.guard }

// Start joins the revoker's consumer group and consumes in the background.
func (r *Revoker) Start(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("revoke: Start called twice")
	}
	g, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: r.cfg.Group, Brokers: r.o.Brokers, Dialer: r.o.Dialer, Topics: []string{r.cfg.Topic},
		StartOffset: kafka.FirstOffset, JoinGroupBackoff: time.Second,
		SessionTimeout: r.o.SessionTimeout, RebalanceTimeout: r.o.RebalanceTimeout, HeartbeatInterval: r.o.HeartbeatInterval,
		WatchPartitionChanges: true, PartitionWatchInterval: 10 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(f string, a ...any) { r.log.Warn("revoker consumer group: " + fmt.Sprintf(f, a...)) }),
	})
	if err != nil {
		return fmt.Errorf("revoke: consumer group: %w", err)
	}
	r.group = g
	r.runCtx, r.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	r.audit.start(r.runCtx)
	r.wg.Add(1)
	go func() { defer r.wg.Done(); r.groupLoop() }()
	r.stopPoll, r.pollDone = make(chan struct{}), make(chan struct{})
	go r.pollResume()
	return nil
}

// resumePoll is how often a halted revoker looks for an operator's resume.
const resumePoll = 2 * time.Second

// pollResume ends a halt when an operator resumed (vigil revoke resume).
func (r *Revoker) pollResume() {
	defer close(r.pollDone)
	t := time.NewTicker(resumePoll)
	defer t.Stop()
	for {
		select {
		case <-r.stopPoll:
			return
		case <-t.C:
		}
		now := r.o.Now()
		tripped := r.guard.TrippedAt(now)
		if tripped.IsZero() {
			r.setHalted(now)
			continue
		}
		ctx, cancel := context.WithTimeout(r.runCtx, 10*time.Second)
		at, err := r.o.Store.LastResume(ctx, tripped)
		cancel()
		if err != nil {
			r.log.Warn("revoker: looking for a resume failed", "err", err)
			continue
		}
		if r.guard.ResumeAt(at) {
			r.setHalted(now)
			r.log.Warn("revocation resumed by an operator; the cap counts afresh", "tripped_at", tripped, "resumed_at", at)
		}
	}
}

// Ready returns nil while the revoker is a member of a generation.
func (r *Revoker) Ready() error {
	if !r.consuming.Load() {
		return errors.New("revoker: not a member of a consumer-group generation")
	}
	return nil
}

// Shutdown stops consuming, waits for the actions in flight to end or for
// ctx, flushes the audit rows and leaves the group. It is idempotent.
func (r *Revoker) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		go func() {
			defer close(r.stopped)
			if r.group == nil {
				return
			}
			close(r.stopPoll)
			<-r.pollDone
			// The drain (calls in flight, final rows written) is bounded even
			// under a context without deadline: past it the run is cancelled,
			// and what did not end stays uncommitted, to be resumed.
			bound := time.AfterFunc(r.cfg.Adapter.Timeout+10*time.Second, r.cancelRun)
			_ = r.group.Close() // ends the generation: partition loops stop fetching and drain
			r.wg.Wait()
			bound.Stop()
			r.cancelRun()
			r.stopErr = r.audit.stop()
			r.consuming.Store(false)
		}()
	})
	select {
	case <-r.stopped:
		return r.stopErr
	case <-ctx.Done():
		if r.cancelRun != nil {
			r.cancelRun() // abandon retries; their offsets stay uncommitted
		}
		return fmt.Errorf("revoke: shutdown: %w", ctx.Err())
	}
}

func (r *Revoker) groupLoop() {
	for {
		gen, err := r.group.Next(r.runCtx)
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) || r.runCtx.Err() != nil {
				return
			}
			r.consuming.Store(false)
			r.log.Warn("revoker consumer group: join failed, retrying", "err", err)
			continue
		}
		assigned := gen.Assignments[r.cfg.Topic]
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		r.log.Info("revoker: generation joined", "generation", gen.ID, "partitions", ids)
		r.consuming.Store(true)
		if len(assigned) == 0 {
			continue
		}
		gen.Start(func(ctx context.Context) {
			if !r.resume(ctx) {
				return
			}
			var pwg sync.WaitGroup
			for _, a := range assigned {
				pwg.Add(1)
				go func() { defer pwg.Done(); r.consumePartition(ctx, gen, a.ID, a.Offset) }()
			}
			pwg.Wait()
		})
	}
}

// resume loads the past from the store before the first intent of a
// generation is judged, retrying until it succeeds or ctx ends: acting
// without it could send an action twice or overrun the cap.
func (r *Revoker) resume(ctx context.Context) bool {
	b := backoff{initial: r.cfg.RetryInitial, max: r.cfg.RetryMax}
	for {
		now := r.o.Now()
		seed, err := r.o.Store.Load(ctx, now.Add(-finalHorizon), now.Add(-max(r.cfg.Cooldown, r.cfg.CapWindow)), now.Add(-r.cfg.HaltFor))
		if err == nil {
			r.guard.Resume(seed, now)
			r.fmu.Lock()
			for id := range seed.Final {
				if _, ok := r.final[id]; !ok {
					r.final[id] = now
				}
			}
			for id, t := range r.final {
				if now.Sub(t) > finalHorizon {
					delete(r.final, id)
				}
			}
			r.fmu.Unlock()
			if until := r.setHalted(now); !until.IsZero() {
				r.log.Error("revocation is halted by the blast-radius cap", "until", until)
			}
			return true
		}
		wait := b.next()
		r.log.Warn("revoker: loading past actions failed; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// tracker commits a partition's offsets in order as their actions end.
type tracker struct {
	mu      sync.Mutex
	pending []int64        // offsets fetched and not committed, in order
	done    map[int64]bool // of those, the ones whose actions ended
	next    int64          // the offset after the last one committed
	changed chan struct{}  // signalled when an action ends
}

func (t *tracker) add(off int64) {
	t.mu.Lock()
	t.pending = append(t.pending, off)
	t.mu.Unlock()
}

func (t *tracker) finish(off int64) {
	t.mu.Lock()
	t.done[off] = true
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// ready returns the offset to commit (after the longest run of ended
// actions), or -1 when nothing new ended.
func (t *tracker) ready() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for n < len(t.pending) && t.done[t.pending[n]] {
		delete(t.done, t.pending[n])
		n++
	}
	if n == 0 {
		return -1
	}
	t.next = t.pending[n-1] + 1
	t.pending = t.pending[n:]
	return t.next
}

func (r *Revoker) consumePartition(ctx context.Context, gen *kafka.Generation, partition int, offset int64) {
	log := r.log.With("partition", partition)
	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers: r.o.Brokers, Topic: r.cfg.Topic, Partition: partition, Dialer: r.o.Dialer,
		MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 2 * time.Second, QueueCapacity: 100,
		IsolationLevel: kafka.ReadCommitted,
	})
	defer reader.Close()
	if err := reader.SetOffset(offset); err != nil {
		log.Error("revoker: set offset", "offset", offset, "err", err)
		return
	}
	t := &tracker{done: map[int64]bool{}, next: offset, changed: make(chan struct{}, 1)}
	// The committer commits as actions end, so a crash resends only what
	// had not ended.
	commitDone := make(chan struct{})
	stopCommit := make(chan struct{})
	go func() {
		defer close(commitDone)
		for {
			select {
			case <-t.changed:
				r.commit(log, gen, partition, t)
			case <-stopCommit:
				r.commit(log, gen, partition, t)
				return
			}
		}
	}()
	var actions sync.WaitGroup
	defer func() {
		// Drain: fetching stopped; calls in flight end, retries are
		// abandoned (their offsets stay uncommitted), final rows are
		// flushed, and what ended is committed.
		actions.Wait()
		close(stopCommit)
		<-commitDone
	}()
	for {
		m, err := reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("revoker: fetch failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		t.add(m.Offset)
		off := m.Offset
		actions.Add(1)
		r.handle(ctx, log, &m, func(final bool) {
			if final {
				t.finish(off)
			}
			actions.Done()
		})
	}
}

func (r *Revoker) commit(log *slog.Logger, gen *kafka.Generation, partition int, t *tracker) {
	next := t.ready()
	if next < 0 {
		return
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{r.cfg.Topic: {partition: next}}); err != nil {
		log.Warn("revoker: offset commit failed; a later commit supersedes it", "offset", next, "err", err)
	}
}

// handle judges one outbox message and starts its action. end is called
// exactly once: end(true) when the action's final row is durable (or the
// message needs none), end(false) when it stopped without one (shutdown or
// a lost partition), so that its offset is not committed.
func (r *Revoker) handle(ctx context.Context, log *slog.Logger, m *kafka.Message, end func(final bool)) {
	tctx, span := r.startProcessSpan(m)
	if span != nil {
		end = endProcessSpan(span, end)
	}
	in, err := DecodeIntent(m.Value)
	if err != nil {
		r.m.Invalid.Inc()
		log.Error("revoker: skipping an outbox message that is not an intent", "err", err)
		if span != nil {
			span.SetStatus(codes.Error, "not an intent")
		}
		end(true)
		return
	}
	if span != nil {
		span.SetAttributes(attribute.String("vigil.action", string(in.Action)), attribute.String("vigil.action.id", in.ID), attribute.String("vigil.anomaly.id", in.AnomalyID))
	}
	r.fmu.Lock()
	_, busy := r.inflight[in.ID]
	_, final := r.final[in.ID]
	dup := busy || final
	if !dup {
		r.inflight[in.ID] = struct{}{}
	}
	r.fmu.Unlock()
	if dup { // a re-produced intent: the same action is already under way or ended
		end(true)
		return
	}
	now := r.o.Now()
	v := r.guard.Judge(&in, now)
	r.setHalted(now)
	if span != nil && !v.Send {
		span.SetAttributes(attribute.String("vigil.revoke.status", string(v.Status)), attribute.String("vigil.revoke.guardrail", v.Guardrail))
	}
	if !v.Send {
		rec := Record{Intent: &in, AttemptID: newAttemptID(), Status: v.Status, Guardrail: v.Guardrail, Adapter: r.adapter, Time: now}
		if v.Status == StatusDryRun && r.o.Adapter == nil {
			rec.Note = "no session API configured (revoke.adapter.kind: none)"
		}
		if !v.Tripped {
			r.finish(rec, end)
			return
		}
		halt := r.halted(&in, v, now)
		log.Error("revocation halted: the blast-radius cap was reached; every action is suppressed until halt_for passes",
			"max_actions", r.cfg.MaxActions, "cap_window", r.cfg.CapWindow, "halt_for", r.cfg.HaltFor, "anomaly_id", halt.ID)
		rec.Note = fmt.Sprintf("%d revocations in %s reached max_actions %d; halted until %s", v.Count, r.cfg.CapWindow, r.cfg.MaxActions, now.Add(r.cfg.HaltFor).UTC().Format(time.RFC3339))
		go func() {
			if !r.raise(ctx, []detect.Anomaly{halt}) {
				r.release(in.ID, end)
				return
			}
			r.finish(rec, end)
		}()
		return
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.release(in.ID, end)
		return
	}
	r.m.InFlight.Inc()
	go func() {
		defer func() { <-r.sem; r.m.InFlight.Dec() }()
		r.execute(ctx, tctx, &in, end)
	}()
}

// finish queues the final row rec; once it is durable the action is final
// and end(true) is called.
func (r *Revoker) finish(rec Record, end func(bool)) {
	id, guard, status := rec.Intent.ID, rec.Guardrail, rec.Status
	r.audit.add(rec, func(durable bool) {
		if !durable {
			r.release(id, end)
			return
		}
		r.fmu.Lock()
		r.final[id] = time.Now()
		delete(r.inflight, id)
		r.fmu.Unlock()
		r.m.Decisions.WithLabelValues(string(status), guard).Inc()
		end(true)
	})
}

// release forgets an action that stopped without a final row.
func (r *Revoker) release(id string, end func(bool)) {
	r.fmu.Lock()
	delete(r.inflight, id)
	r.fmu.Unlock()
	end(false)
}

// raise makes the revoker's own anomalies durable, retrying until ctx ends.
func (r *Revoker) raise(ctx context.Context, as []detect.Anomaly) bool {
	b := backoff{initial: r.cfg.RetryInitial, max: r.cfg.RetryMax}
	for {
		err := r.o.Raise(ctx, as)
		if err == nil {
			return true
		}
		wait := b.next()
		r.log.Warn("revoker: recording an anomaly failed; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// execute sends one action until it is done, fails for good or passes its
// deadline. ctx (the generation) ending stops the retries and leaves the
// action without a final row, to be resumed by the partition's next owner;
// a call already in flight is let finish (bounded by the adapter timeout)
// and recorded.
//
// tctx carries the trace context of the intent's message (nothing when
// tracing is off); the attempts' spans are its children.
func (r *Revoker) execute(ctx, tctx context.Context, in *Intent, end func(bool)) {
	deadline := in.RequestedAt.Add(r.cfg.Deadline)
	if err := r.limiter.Wait(ctx); err != nil {
		r.release(in.ID, end)
		return
	}
	endpoint := r.o.Adapter.Endpoint()
	b := backoff{initial: r.cfg.RetryInitial, max: r.cfg.RetryMax}
	attempt := 0
	var last Result
	for {
		if !r.o.Now().Before(deadline) {
			r.fail(ctx, in, attempt, last, fmt.Sprintf("deadline %s passed after %d attempts", r.cfg.Deadline, attempt), end)
			return
		}
		res, err := r.breaker.Execute(func() (Result, error) {
			attempt++
			res, rec := r.attempt(tctx, in, attempt, endpoint)
			last = res
			switch res.Outcome {
			case Done:
				rec.Status = StatusSucceeded
				rec.TimeToRevoke = rec.Time.Sub(in.FirstEventTime)
				r.m.TimeToRevoke.Observe(rec.TimeToRevoke.Seconds())
				r.finish(rec, end)
				return res, nil
			case Permanent:
				return res, nil // the endpoint answered: not a health failure
			}
			rec.Status = StatusRetrying
			r.audit.add(rec, nil)
			return res, res.Err
		})
		switch {
		case err == nil && res.Outcome == Done:
			return
		case err == nil && res.Outcome == Permanent:
			r.fail(ctx, in, attempt, res, "the session API refused the request", end)
			return
		case ctx.Err() != nil:
			r.release(in.ID, end)
			return
		}
		wait := b.next()
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			r.m.Attempts.WithLabelValues(endpoint, "circuit_open").Inc()
			wait = r.cfg.BreakerOpen/4 + rand.N(r.cfg.BreakerOpen/4+1)
		} else if res.RetryAfter > wait {
			wait = res.RetryAfter
		}
		if rest := deadline.Sub(r.o.Now()); wait > rest {
			wait = max(rest, 0)
		}
		select {
		case <-ctx.Done():
			r.release(in.ID, end)
			return
		case <-time.After(wait):
		}
	}
}

// attempt makes one call to the session API, recording its sent row first;
// it returns the result and the attempt's row, status still to set.
func (r *Revoker) attempt(tctx context.Context, in *Intent, n int, endpoint string) (Result, Record) {
	attemptID := newAttemptID()
	r.audit.add(Record{Intent: in, AttemptID: attemptID, Attempt: n, Status: StatusSent, Adapter: r.adapter, Endpoint: endpoint, Time: r.o.Now()}, nil)
	// The call runs under the revoker's run context, not the generation's:
	// a request already sent is let finish and its answer recorded.
	actx, cancel := context.WithTimeout(r.runCtx, r.cfg.Adapter.Timeout)
	var span trace.Span
	if r.o.Tracer != nil {
		_, span = r.o.Tracer.Start(tctx, "revoke attempt", trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(
			attribute.Int("vigil.revoke.attempt", n),
			attribute.String("vigil.revoke.adapter", r.adapter),
			attribute.String("vigil.revoke.endpoint", endpoint),
		))
		actx = trace.ContextWithSpan(actx, span)
	}
	t0 := time.Now()
	res := r.o.Adapter.Revoke(actx, in)
	cancel()
	lat := time.Since(t0)
	if span != nil {
		endAttemptSpan(span, res)
	}
	r.m.AttemptSeconds.WithLabelValues(endpoint).Observe(lat.Seconds())
	r.m.Attempts.WithLabelValues(endpoint, res.Outcome.String()).Inc()
	rec := Record{Intent: in, AttemptID: attemptID, Attempt: n, Adapter: r.adapter, Endpoint: endpoint, HTTP: res.Status, Note: res.Note, Latency: lat, Time: r.o.Now()}
	if res.Err != nil {
		rec.Error = res.Err.Error()
	}
	return res, rec
}

// fail records an action's failure and raises revocation_failed, so a
// failed revocation always reaches a human.
func (r *Revoker) fail(ctx context.Context, in *Intent, attempts int, last Result, why string, end func(bool)) {
	msg := why
	if last.Err != nil {
		msg += ": " + last.Err.Error()
	}
	r.log.Error("revocation failed", "id", in.ID, "action", in.Action, "anomaly_id", in.AnomalyID, "attempts", attempts, "err", msg)
	rec := Record{Intent: in, AttemptID: newAttemptID(), Attempt: attempts, Status: StatusFailed, Adapter: r.adapter, HTTP: last.Status, Error: msg, Time: r.o.Now()}
	if r.o.Adapter != nil {
		rec.Endpoint = r.o.Adapter.Endpoint()
	}
	ev, _ := json.Marshal(map[string]any{"action_id": in.ID, "action": in.Action, "anomaly_id": in.AnomalyID, "attempts": attempts, "http_status": last.Status, "error": msg})
	a := detect.Anomaly{
		ID:       detect.AnomalyID(DetectorRevoke, []string{KindRevocationFailed, in.ID}, in.RequestedAt),
		Detector: DetectorRevoke, Kind: KindRevocationFailed, Severity: detect.SeverityHigh,
		Tenant: in.Tenant, UserID: in.UserID, SessionID: in.SessionID, FamilyID: in.FamilyID, IP: in.IP,
		Evidence: string(ev), FirstEventTime: in.FirstEventTime, DetectedAt: rec.Time, WindowStart: in.RequestedAt, WindowEnd: rec.Time,
	}
	if !r.raise(ctx, []detect.Anomaly{a}) {
		r.release(in.ID, end)
		return
	}
	r.finish(rec, end)
}

// setHalted sets the halted gauge from the guard and returns when the halt ends.
func (r *Revoker) setHalted(now time.Time) time.Time {
	until := r.guard.Halted(now)
	if until.IsZero() {
		r.m.Halted.Set(0)
	} else {
		r.m.Halted.Set(1)
	}
	return until
}

// halted builds the revocation_halted anomaly for the action that tripped
// the cap; its id derives from that action, so a retried trip is one anomaly.
func (r *Revoker) halted(in *Intent, v Verdict, now time.Time) detect.Anomaly {
	ev, _ := json.Marshal(map[string]any{
		"revocations_in_window": v.Count, "max_actions": r.cfg.MaxActions, "cap_window": r.cfg.CapWindow.String(),
		"halt_for": r.cfg.HaltFor.String(), "halted_until": now.Add(r.cfg.HaltFor).UTC(), "tripped_by": in.ID, "tripped_by_anomaly": in.AnomalyID,
		"dry_run": r.guard.DryRun(),
	})
	return detect.Anomaly{
		ID:       detect.AnomalyID(DetectorRevoke, []string{KindRevocationHalted, in.ID}, in.RequestedAt),
		Detector: DetectorRevoke, Kind: KindRevocationHalted, Severity: detect.SeverityCritical, Shadow: r.guard.DryRun(),
		Evidence: string(ev), FirstEventTime: now, DetectedAt: now, WindowStart: now.Add(-r.cfg.CapWindow), WindowEnd: now,
	}
}

// startProcessSpan starts the consumer span of outbox message m,
// continuing the trace of its traceparent header; it returns a context
// carrying the span, and a nil span when tracing is off.
func (r *Revoker) startProcessSpan(m *kafka.Message) (context.Context, trace.Span) {
	ctx := context.Background()
	if r.o.Tracer == nil {
		return ctx, nil
	}
	if sc := telemetry.SpanContextFromHeaders(m.Headers); sc.IsValid() {
		ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
	}
	return r.o.Tracer.Start(ctx, r.cfg.Topic+" process", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation.type", "process"),
		attribute.String("messaging.destination.name", r.cfg.Topic),
		attribute.String("messaging.destination.partition.id", strconv.Itoa(m.Partition)),
		attribute.String("messaging.consumer.group.name", r.cfg.Group),
		attribute.Int64("messaging.kafka.offset", m.Offset),
	))
}

// endProcessSpan wraps end to end span first, failed when the action
// stopped without a final row (it will be resumed).
func endProcessSpan(span trace.Span, end func(bool)) func(bool) {
	return func(final bool) {
		if !final {
			span.SetStatus(codes.Error, "stopped without a final row; the next owner resumes it")
		}
		span.End()
		end(final)
	}
}

// endAttemptSpan records an attempt's outcome and HTTP status on its span and ends it.
func endAttemptSpan(span trace.Span, res Result) {
	span.SetAttributes(attribute.String("vigil.revoke.outcome", res.Outcome.String()))
	if res.Status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", res.Status))
	}
	if res.Outcome != Done {
		// Not res.Err: its URL may name the subject (a vendor's /sessions/{id}).
		msg := res.Outcome.String() + ": no answer"
		if res.Status != 0 {
			msg = fmt.Sprintf("%s: HTTP %d", res.Outcome, res.Status)
		}
		span.SetStatus(codes.Error, msg)
	}
	span.End()
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// backoff is a jittered exponential backoff: uniform in [d/2, d] where d
// doubles from initial up to max.
type backoff struct {
	initial, max time.Duration
	attempt      int
}

func (b *backoff) next() time.Duration {
	d := b.initial << min(b.attempt, 30)
	if d <= 0 || d > b.max {
		d = b.max
	}
	b.attempt++
	return d/2 + rand.N(d/2+1)
}
