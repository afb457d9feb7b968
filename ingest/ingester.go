// Package ingest consumes session events from Kafka and makes them durable in
// ClickHouse, at least once and with nothing lost.
//
// One kafka-go consumer group member per process; per assigned partition a
// fetcher feeds a bounded channel, a worker decodes and validates each message
// in order into a columnar batch (by size or time), and a writer makes each
// batch durable — events in ClickHouse, invalid messages in the dead-letter
// topic and the dead_letters table — and only then commits the partition's
// offset. Transient failures are retried with jittered backoff forever;
// meanwhile the bounded buffers fill and fetching stops (push back), so a slow
// or absent ClickHouse costs lag, never data.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/pseudonym"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/slo"
)

// Options wires an Ingester to Kafka and a Sink.
type Options struct {
	Config            Config
	Brokers           []string
	Topic             string
	Group             string
	DLQTopic          string
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	// Dialer is used by the consumer group and partition readers (TLS, SASL); nil uses kafka-go's default.
	Dialer *kafka.Dialer
	// Transport is used by the DLQ writer and the lag monitor (TLS, SASL);
	// nil makes a private one. Shutdown closes its idle connections.
	Transport kafka.RoundTripper
	Sink      Sink
	// Detectors, when it has any enabled, judges every valid event of an
	// owned partition in order; the anomalies are made durable with the
	// batch, before its offset is committed. Nil turns detection off.
	Detectors *detect.Registry
	// History rebuilds a newly assigned partition's detector state from
	// the stored events before its first new event is judged; nil starts
	// every partition with empty state.
	History detect.History
	// OnAnomalies hands a batch's anomalies on (to the revoker's outbox,
	// to alerting) while they are inserted, before the batch's offset is
	// committed. An error is
	// retried like a failed insert; it must therefore be idempotent (the
	// anomaly ids are). Nil hands nothing on.
	OnAnomalies func(ctx context.Context, as []detect.Anomaly) error
	// Pseudonyms, when enabled, replaces each valid event's user, session
	// and family ids and IP by their pseudonyms before it is stored or
	// judged (so that detector state rebuilt from ClickHouse matches);
	// the anomalies it raises carry the clear ids in Clear, for the
	// session API. Rejected messages go to the DLQ as they came.
	Pseudonyms pseudonym.Key
	// OnAssign is told the partitions of the events topic this process owns
	// at each consumer-group generation, and nil when it owns none (a
	// failed join, shutdown); e.g. to run the window detectors only in the
	// owner of partition 0. It is called from the group goroutine and must
	// not block. Nil tells nobody.
	OnAssign func(partitions []int)
	// SLOs, when set, judges every valid event against each SLO; the
	// good and bad counts go to SLOMetrics once the batch is durable.
	SLOs *slo.Set
	// SLOMetrics receives the SLI counters; nil creates unregistered ones.
	SLOMetrics *slo.Metrics
	// DetectMetrics receives the detectors' hand-off latency; nil creates unregistered metrics.
	DetectMetrics *detect.Metrics
	Metrics       *Metrics // nil creates unregistered metrics
	// Tracer records one span per batch, linked to the producers'
	// traceparent headers, with fetch, decode, insert and commit children,
	// and one span per anomaly (its context on Anomaly.Trace, for the
	// hand-off to continue); nil disables tracing.
	Tracer trace.Tracer
	Logger *slog.Logger
	Now    func() time.Time
}

// Ingester runs the consume → decode → persist → commit pipeline. Start it
// once, then Shutdown (idempotent) from any goroutine; Ready, Stats and Lag
// are safe for concurrent use at any time.
type Ingester struct {
	o      Options
	cfg    Config
	log    *slog.Logger
	m      *Metrics
	tracer trace.Tracer // nil when tracing is off

	group *kafka.ConsumerGroup
	dlq   *kafka.Writer
	lagc  *kafka.Client

	runCtx    context.Context
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
	stopOnce  sync.Once
	stopped   chan struct{}

	started     atomic.Bool
	consuming   atomic.Bool
	storeErr    atomic.Pointer[string] // last ping failure, nil when the ping succeeds
	writeErr    atomic.Pointer[string] // last insert failure, nil after a successful insert
	parts       sync.Map               // partition int → *partitionState
	kept        sync.Map               // partition int → keptState, between generations
	nEvents     atomic.Int64
	nInvalid    atomic.Int64
	nCommitted  atomic.Int64
	nGeneration atomic.Int64
}

// keptState is a partition's detector state left by the generation that
// owned it, with the offset of the first event it has not judged: the next
// generation reuses it when it starts at exactly that offset, instead of
// rebuilding it from ClickHouse.
type keptState struct {
	dp   *detect.Partition
	next int64
}

// partitionState is what the lag monitor needs from an owned partition.
type partitionState struct {
	queue   chan kafka.Message // the bounded fetch buffer, for the fill gauge
	mu      sync.Mutex
	pending []time.Time // event time of the first message of each uncommitted batch, oldest first
}

// Stats are cumulative counts since Start, for progress displays and tests.
type Stats struct {
	Events      int64 // valid events made durable
	Invalid     int64 // messages dead-lettered
	Commits     int64 // successful offset commits
	Generations int64 // consumer-group generations joined
}

// New checks the options and returns an unstarted Ingester.
func New(o Options) (*Ingester, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	switch {
	case len(o.Brokers) == 0:
		return nil, errors.New("ingest: no brokers")
	case o.Topic == "" || o.Group == "" || o.DLQTopic == "":
		return nil, errors.New("ingest: topic, group and dlq topic are required")
	case o.Sink == nil:
		return nil, errors.New("ingest: no sink")
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.DetectMetrics == nil {
		o.DetectMetrics = detect.NewMetrics(nil)
	}
	if o.SLOs != nil && o.SLOMetrics == nil {
		o.SLOMetrics = slo.NewMetrics(nil, o.SLOs)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Transport == nil {
		o.Transport = &kafka.Transport{ClientID: "vigil"}
	}
	if o.SessionTimeout == 0 {
		o.SessionTimeout = 30 * time.Second
	}
	if o.RebalanceTimeout == 0 {
		o.RebalanceTimeout = 30 * time.Second
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = 3 * time.Second
	}
	in := &Ingester{o: o, cfg: o.Config, log: o.Logger, m: o.Metrics, tracer: o.Tracer, stopped: make(chan struct{})}
	msg := "starting"
	in.storeErr.Store(&msg)
	return in, nil
}

// Start joins the consumer group and begins consuming in the background. It
// returns quickly; errors joining the group are retried and logged.
func (in *Ingester) Start(ctx context.Context) error {
	if !in.started.CompareAndSwap(false, true) {
		return errors.New("ingest: Start called twice")
	}
	start := kafka.FirstOffset
	if in.cfg.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	in.lagc = &kafka.Client{Addr: kafka.TCP(in.o.Brokers...), Transport: in.o.Transport, Timeout: 10 * time.Second}
	if err := in.checkTopics(ctx); err != nil {
		return err
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                in.o.Group,
		Brokers:           in.o.Brokers,
		Dialer:            in.o.Dialer,
		Topics:            []string{in.o.Topic},
		SessionTimeout:    in.o.SessionTimeout,
		RebalanceTimeout:  in.o.RebalanceTimeout,
		HeartbeatInterval: in.o.HeartbeatInterval,
		JoinGroupBackoff:  time.Second,
		// A topic that gains partitions triggers a rebalance, so the new
		// partitions are consumed without a restart.
		WatchPartitionChanges:  true,
		PartitionWatchInterval: 10 * time.Second,
		StartOffset:            start,
		ErrorLogger:            kafkaLogger{in.log, "kafka consumer group"},
	})
	if err != nil {
		return fmt.Errorf("ingest: consumer group: %w", err)
	}
	in.group = group
	in.dlq = &kafka.Writer{
		Addr:         kafka.TCP(in.o.Brokers...),
		Topic:        in.o.DLQTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    10000,
		BatchBytes:   dlqMaxBatchBytes,
		BatchTimeout: 5 * time.Millisecond,
		Transport:    in.o.Transport,
		ErrorLogger:  kafkaLogger{in.log, "kafka dlq writer"},
	}
	in.runCtx, in.cancelRun = context.WithCancel(context.WithoutCancel(ctx))
	in.wg.Add(3)
	go func() { defer in.wg.Done(); in.groupLoop() }()
	go func() { defer in.wg.Done(); in.lagLoop() }()
	go func() { defer in.wg.Done(); in.healthLoop() }()
	return nil
}

// checkTopics fails fast, naming the config key, when the events or DLQ
// topic does not exist: vigil never creates topics implicitly.
func (in *Ingester) checkTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	md, err := in.lagc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{in.o.Topic, in.o.DLQTopic}})
	if err != nil {
		return fmt.Errorf("ingest: kafka metadata from %v (kafka.brokers): %w", in.o.Brokers, err)
	}
	found := map[string]error{}
	for _, t := range md.Topics {
		found[t.Name] = t.Error
		if t.Error == nil && len(t.Partitions) == 0 {
			found[t.Name] = errors.New("no partitions")
		}
	}
	for _, c := range []struct{ key, name string }{{"kafka.topic", in.o.Topic}, {"kafka.dlq_topic", in.o.DLQTopic}} {
		if err, ok := found[c.name]; !ok || err != nil {
			if err == nil {
				err = errors.New("not in metadata")
			}
			return fmt.Errorf("ingest: topic %q (%s) is not usable: %w; create it first", c.name, c.key, err)
		}
	}
	return nil
}

// Shutdown leaves the group after every partition worker has drained: each
// flushes its partial batch and commits (bounded by ingest.drain_timeout),
// and returns when done or when ctx ends. It is idempotent.
func (in *Ingester) Shutdown(ctx context.Context) error {
	in.stopOnce.Do(func() {
		go func() {
			if in.group != nil {
				_ = in.group.Close() // ends the generation, waits for the partition workers, leaves the group
			}
			if in.cancelRun != nil {
				in.cancelRun()
			}
			in.wg.Wait()
			if in.dlq != nil {
				_ = in.dlq.Close()
			}
			if t, ok := in.o.Transport.(*kafka.Transport); ok {
				t.CloseIdleConnections()
			}
			in.consuming.Store(false)
			in.m.Ready.Set(0)
			close(in.stopped)
		}()
	})
	select {
	case <-in.stopped:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("ingest: shutdown: %w", ctx.Err())
	}
}

// Ready returns nil when the ingester is consuming and the store is
// reachable, or an error saying why not.
func (in *Ingester) Ready() error {
	if !in.consuming.Load() {
		return errors.New("not consuming: not a member of a consumer-group generation")
	}
	if p := in.storeErr.Load(); p != nil {
		return fmt.Errorf("store unavailable: %s", *p)
	}
	if p := in.writeErr.Load(); p != nil {
		return fmt.Errorf("store inserts failing: %s", *p)
	}
	return nil
}

// Stats returns cumulative counts since Start.
func (in *Ingester) Stats() Stats {
	return Stats{Events: in.nEvents.Load(), Invalid: in.nInvalid.Load(), Commits: in.nCommitted.Load(), Generations: in.nGeneration.Load()}
}

func (in *Ingester) setStoreErr(err error) { in.setErr(&in.storeErr, err) }

func (in *Ingester) setWriteErr(err error) { in.setErr(&in.writeErr, err) }

func (in *Ingester) setErr(p *atomic.Pointer[string], err error) {
	if err == nil {
		if p.Swap(nil) != nil && in.Ready() == nil {
			in.log.Info("clickhouse reachable again")
		}
	} else {
		msg := err.Error()
		if p.Swap(&msg) == nil {
			in.log.Warn("clickhouse unavailable; pushing back on Kafka", "err", err)
		}
	}
	in.updateReady()
}

func (in *Ingester) updateReady() {
	if in.Ready() == nil {
		in.m.Ready.Set(1)
	} else {
		in.m.Ready.Set(0)
	}
}

// assign tells OnAssign which partitions this process owns.
func (in *Ingester) assign(ids []int) {
	if in.o.OnAssign != nil {
		in.o.OnAssign(ids)
	}
}

// groupLoop runs one generation after another until Shutdown.
func (in *Ingester) groupLoop() {
	defer in.assign(nil)
	for {
		gen, err := in.group.Next(in.runCtx)
		if err != nil {
			if errors.Is(err, kafka.ErrGroupClosed) || in.runCtx.Err() != nil {
				return
			}
			in.consuming.Store(false)
			in.updateReady()
			in.assign(nil)
			in.log.Warn("consumer group: join failed, retrying", "err", err)
			continue
		}
		in.nGeneration.Add(1)
		in.m.Rebalances.Inc()
		assigned := gen.Assignments[in.o.Topic]
		in.m.Assigned.Set(float64(len(assigned)))
		ids := make([]int, 0, len(assigned))
		for _, a := range assigned {
			ids = append(ids, a.ID)
		}
		in.log.Info("consumer group: generation joined", "generation", gen.ID, "partitions", ids)
		in.assign(ids)
		in.consuming.Store(true)
		in.updateReady()
		in.kept.Range(func(k, v any) bool { // state of partitions this process no longer owns
			if !slices.ContainsFunc(assigned, func(a kafka.PartitionAssignment) bool { return a.ID == k.(int) }) {
				v.(keptState).dp.Close()
				in.kept.Delete(k)
			}
			return true
		})
		for _, a := range assigned {
			in.wg.Add(1)
			gen.Start(func(ctx context.Context) {
				defer in.wg.Done()
				in.consumePartition(ctx, gen, a.ID, a.Offset)
			})
		}
	}
}

// healthLoop pings the store so readiness reflects it even without traffic.
func (in *Ingester) healthLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(in.runCtx, 2*time.Second)
		err := in.o.Sink.Ping(ctx)
		cancel()
		if in.runCtx.Err() != nil {
			return
		}
		in.setStoreErr(err)
		select {
		case <-in.runCtx.Done():
			return
		case <-t.C:
		}
	}
}

// work is one batch in flight from a partition worker to its writer.
type work struct {
	events     EventColumns
	dead       []DeadLetter
	byType     [16]int
	lastOffset int64        // -1 when empty
	bytes      int          // key and value bytes of the batch's messages
	links      []trace.Link // producers' trace contexts, when tracing
	anomalies  []detect.Anomaly
	readAt     []time.Time // when the offending message of each anomaly was read
	sli        *slo.Tally  // the batch's good and bad events per SLO; nil without SLOs

	// When tracing: when the first and last messages were taken from the
	// fetch buffer, the time spent decoding and judging them, the sampled
	// producer context of each anomaly's event (zero when none) and the
	// anomalies' spans (nil once ended).
	openedAt, lastAt time.Time
	decodeBusy       time.Duration
	parents          []trace.SpanContext
	spans            []trace.Span
}

func (w *work) reset() {
	w.events.Reset()
	clear(w.dead)
	w.dead = w.dead[:0]
	w.byType = [16]int{}
	w.lastOffset = -1
	w.bytes = 0
	clear(w.links)
	w.links = w.links[:0]
	clear(w.anomalies)
	w.anomalies = w.anomalies[:0]
	w.readAt = w.readAt[:0]
	w.openedAt, w.lastAt, w.decodeBusy = time.Time{}, time.Time{}, 0
	clear(w.parents)
	w.parents = w.parents[:0]
	clear(w.spans)
	w.spans = w.spans[:0]
	if w.sli != nil {
		w.sli.Reset()
	}
}

func (w *work) empty() bool { return w.lastOffset < 0 }

// consumePartition owns one partition for one generation: fetch → decode →
// batch → persist → commit, and a drain when the generation ends.
func (in *Ingester) consumePartition(genCtx context.Context, gen *kafka.Generation, partition int, offset int64) {
	log := in.log.With("partition", partition)
	plabel := strconv.Itoa(partition)
	msgs := make(chan kafka.Message, in.cfg.QueueSize)
	state := &partitionState{queue: msgs}
	in.parts.Store(partition, state)
	defer in.parts.CompareAndDelete(partition, state)
	defer in.m.BufferFill.DeleteLabelValues(plabel)

	reader := kafka.NewReader(kafka.ReaderConfig{
		Brokers:   in.o.Brokers,
		Topic:     in.o.Topic,
		Partition: partition,
		Dialer:    in.o.Dialer,
		MinBytes:  1,
		MaxBytes:  16 << 20,
		// kafka-go waits MaxWait for the fetch response and asks the broker
		// to answer within MaxWait less a round-trip allowance (up to 1 s).
		// With 250 ms a loaded broker building a large response misses
		// the deadline every time, and the partition never moves; new
		// messages are answered at once whatever MaxWait is.
		MaxWait:        2 * time.Second,
		QueueCapacity:  1000,
		IsolationLevel: kafka.ReadCommitted,
		ErrorLogger:    kafkaLogger{log, "kafka reader"},
	})
	defer reader.Close()
	if err := reader.SetOffset(offset); err != nil {
		log.Error("set offset", "offset", offset, "err", err)
		<-genCtx.Done()
		return
	}
	log.Debug("partition assigned", "offset", offset)

	// Detector state: kept from the previous generation when it ends
	// exactly where this one starts, else rebuilt from the stored events,
	// before the first new event is judged. It is kept again at the end.
	var dp *detect.Partition
	judged := offset // offset of the first event dp has not judged
	keep := true     // whether dp is worth keeping for the next generation
	if in.o.Detectors.Enabled() {
		if v, ok := in.kept.LoadAndDelete(partition); ok && v.(keptState).next == offset {
			dp = v.(keptState).dp
			log.Debug("detector state kept from the previous generation", "offset", offset)
		} else {
			if ok {
				v.(keptState).dp.Close()
			}
			dp = in.o.Detectors.Partition(int32(partition))
			if in.o.History != nil {
				ok, blind := in.rebuild(genCtx, log, dp, offset)
				if !ok {
					dp.Close()
					return // the generation ended first; nothing was consumed
				}
				keep = !blind // given-up state is rebuilt again next time, not kept
			}
		}
		defer func() {
			if keep {
				in.kept.Store(partition, keptState{dp, judged})
			} else {
				dp.Close()
			}
		}()
	}

	// Fetcher: the bounded channel is the push-back point.
	fetchCtx, stopFetch := context.WithCancel(genCtx)
	defer stopFetch()
	var fetchWG sync.WaitGroup
	fetchWG.Add(1)
	go func() {
		defer fetchWG.Done()
		for {
			m, err := reader.FetchMessage(fetchCtx)
			if err != nil {
				if fetchCtx.Err() != nil {
					return
				}
				log.Warn("fetch failed; retrying", "err", err)
				select {
				case <-fetchCtx.Done():
					return
				case <-time.After(time.Second):
				}
				continue
			}
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				return
			}
		}
	}()

	// Writer: persists batches in order and commits after each.
	drainCtx, cancelDrain := context.WithCancel(context.WithoutCancel(genCtx))
	defer cancelDrain()
	batches := make(chan *work, 1)
	free := make(chan *work, 2)
	for range 2 {
		w := &work{}
		if in.o.SLOs != nil {
			w.sli = in.o.SLOs.NewTally()
		}
		w.reset()
		free <- w
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		// Once a batch fails to persist (only at the drain deadline), no
		// later batch may commit: its offset would cover the failed one.
		broken := false
		for w := range batches {
			ctx, span := drainCtx, trace.Span(nil)
			if in.tracer != nil {
				ctx, span = in.startBatchSpan(drainCtx, partition, w)
				in.traceIntake(ctx, span, w)
				in.startAnomalySpans(ctx, span, w)
			}
			ictx, ispan := in.startStep(ctx, span, spanInsert,
				attribute.Int("vigil.events", w.events.Len()), attribute.Int("vigil.anomalies", len(w.anomalies)), attribute.Int("vigil.dead_letters", len(w.dead)))
			ok := !broken && in.persist(ictx, log, w)
			endAnomalySpans(w, notPersisted(ok))
			endStep(ispan, notPersisted(ok))
			if ok {
				_, cspan := in.startStep(ctx, span, spanCommit, attribute.Int64("messaging.kafka.offset", w.lastOffset+1))
				err := in.commit(log, gen, partition, w.lastOffset+1)
				endStep(cspan, errString(err))
				in.account(w)
			} else {
				broken = true
			}
			if span != nil {
				endBatchSpan(span, ok)
			}
			state.mu.Lock()
			if len(state.pending) > 0 {
				state.pending = state.pending[1:]
			}
			state.mu.Unlock()
			w.reset()
			free <- w
		}
	}()

	dec := schemas.NewDecoder(schemas.DecoderConfig{MaxMessageBytes: in.cfg.MaxMessageBytes, MaxFutureSkew: in.cfg.MaxFutureSkew, Now: in.o.Now})
	var ev schemas.Event
	cur := <-free
	timer := time.NewTimer(in.cfg.FlushInterval)
	defer timer.Stop()
	flush := func() bool {
		if cur.empty() {
			return true
		}
		select {
		case batches <- cur:
		case <-genCtx.Done():
			return false // cur is still ours; the drain sends it
		}
		select {
		case cur = <-free:
			return true
		case <-genCtx.Done():
			cur = nil
			return false
		}
	}
	// An anomaly makes the batch urgent: it goes to the writer as soon as
	// the writer is idle (at once if it is), so a detection waits for one
	// insert, not for flush_interval; a burst of anomalies while the
	// writer is busy still makes one batch, not one each.
	urgent := false
	sendUrgent := func(next *work) {
		batches <- cur // never blocks: the writer is idle, its buffer is free
		cur, urgent = next, false
	}
loop:
	for {
		var idle chan *work // the free buffers, watched while a batch is urgent
		if urgent {
			idle = free
		}
		select {
		case m := <-msgs:
			if cur.empty() {
				timer.Reset(in.cfg.FlushInterval)
			}
			var t0 time.Time
			if in.tracer != nil {
				t0 = time.Now()
			}
			if in.add(dec, &ev, cur, &m, state, dp) {
				urgent = true
			}
			if in.tracer != nil {
				cur.noteRead(t0, time.Now())
			}
			judged = m.Offset + 1
			if cur.events.Len()+len(cur.dead) >= in.cfg.BatchSize || cur.bytes >= in.cfg.BatchBytes {
				if !flush() {
					break loop
				}
				urgent = false
			}
		case next := <-idle:
			sendUrgent(next)
		case <-timer.C:
			if !flush() {
				break loop
			}
			urgent = false
		case <-genCtx.Done():
			break loop
		}
	}

	// Drain: stop fetching, persist and commit what is decoded, within the drain timeout.
	stopFetch()
	fetchWG.Wait()
	timeout := time.AfterFunc(in.cfg.DrainTimeout, cancelDrain)
	defer timeout.Stop()
	if cur != nil && !cur.empty() {
		batches <- cur
	}
	close(batches)
	<-writerDone
	if drainCtx.Err() != nil {
		log.Warn("drain timed out; uncommitted messages will be replayed by the next owner", "timeout", in.cfg.DrainTimeout)
	} else {
		log.Debug("partition drained")
	}
}

// rebuild restores dp's state from the events stored below offset,
// retrying while it fails for up to detect.rebuild_timeout (a slow but
// healthy rebuild is never cut short); past that the partition is consumed
// with empty state rather than not at all, and the failure is logged and
// counted. ok is false when the generation ended first; blind is true when
// the state was given up.
func (in *Ingester) rebuild(genCtx context.Context, log *slog.Logger, dp *detect.Partition, offset int64) (ok, blind bool) {
	timeout := in.o.Detectors.Config().RebuildTimeout
	var failingSince time.Time
	err := retry(genCtx, in.cfg.RetryInitial, in.cfg.RetryMax, func(ctx context.Context) error {
		_, err := dp.Rebuild(ctx, in.o.History, offset)
		if err != nil && ctx.Err() == nil {
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) >= timeout {
				return Permanent(err)
			}
		}
		return err
	}, func(err error, wait time.Duration) {
		in.m.Retries.WithLabelValues(opRebuild).Inc()
		log.Warn("retrying", "op", opRebuild, "in", wait.Round(time.Millisecond), "err", err)
	})
	switch {
	case err == nil:
		return true, false
	case genCtx.Err() != nil:
		return false, false
	}
	in.o.DetectMetrics.RebuildsAbandoned.Inc()
	log.Error("detector state could not be rebuilt; judging this partition with empty state: a replay of a token rotated before the restart will not be caught",
		"offset", offset, "failing_for", timeout, "err", err)
	return true, true
}

// add decodes one message into the batch: valid events as rows, and
// judged by the stream detectors when dp is not nil; invalid ones as dead
// letters. Decode errors are permanent by construction. It reports whether
// a detector raised an anomaly.
func (in *Ingester) add(dec *schemas.Decoder, ev *schemas.Event, w *work, m *kafka.Message, state *partitionState, dp *detect.Partition) bool {
	err := dec.Decode(m.Value, ev)
	if w.empty() {
		t := m.Time
		if err == nil {
			t = ev.Time
		}
		state.mu.Lock()
		state.pending = append(state.pending, t)
		state.mu.Unlock()
	}
	w.lastOffset = m.Offset
	w.bytes += len(m.Key) + len(m.Value)
	if in.tracer != nil && len(w.links) < maxLinks {
		if l, ok := linkFrom(m); ok {
			w.links = append(w.links, l)
		}
	}
	if err == nil {
		var clear detect.Subject
		if k := in.o.Pseudonyms; k.Enabled() {
			clear = detect.Subject{UserID: ev.UserID, SessionID: ev.SessionID, FamilyID: ev.FamilyID, IP: ev.IP}
			ev.UserID, ev.SessionID, ev.FamilyID, ev.IP = k.Of(ev.UserID), k.Of(ev.SessionID), k.Of(ev.FamilyID), k.Of(ev.IP)
		}
		w.events.Append(ev, int32(m.Partition), m.Offset)
		w.byType[ev.Type]++
		if w.sli != nil {
			in.o.SLOs.Add(w.sli, ev)
		}
		if dp == nil {
			return false
		}
		n := len(w.anomalies)
		w.anomalies = dp.Observe(ev, m.Offset, w.anomalies)
		if len(w.anomalies) == n {
			return false
		}
		now := time.Now()
		var parent trace.SpanContext
		if in.tracer != nil {
			parent = sampledParent(m)
		}
		for i := n; i < len(w.anomalies); i++ {
			w.readAt = append(w.readAt, now)
			if in.tracer != nil {
				w.parents = append(w.parents, parent)
			}
			if a := &w.anomalies[i]; in.o.Pseudonyms.Enabled() {
				a.Clear = clearSubject(a, ev, clear)
			}
		}
		return true
	}
	d := DeadLetter{
		Topic: m.Topic, Partition: int32(m.Partition), Offset: m.Offset, MessageTime: m.Time.UTC(),
		ReceivedAt: in.o.Now().UTC(), Key: m.Key, Value: m.Value, Reason: schemas.ReasonOf(err),
	}
	if d.MessageTime.Unix() <= 0 { // a record without a timestamp
		d.MessageTime = d.ReceivedAt
	}
	var de *schemas.DecodeError
	if errors.As(err, &de) {
		d.Field, d.Detail = de.Field, de.Detail
	}
	if d.Reason == "" {
		d.Reason = schemas.ReasonMalformedJSON
	}
	for _, h := range m.Headers {
		d.Headers = append(d.Headers, Header{Key: h.Key, Value: h.Value})
	}
	w.dead = append(w.dead, d)
	return false
}

// clearSubject returns the clear identifiers of anomaly a raised on event
// ev (pseudonymized; clear holds its identifiers in clear): those a names,
// when each is ev's; nil when a names another subject (known here only by
// pseudonym) or nothing.
func clearSubject(a *detect.Anomaly, ev *schemas.Event, clear detect.Subject) *detect.Subject {
	var c detect.Subject
	named := false
	for _, f := range []struct {
		got, pseudo, clear string
		dst                *string
	}{
		{a.UserID, ev.UserID, clear.UserID, &c.UserID},
		{a.SessionID, ev.SessionID, clear.SessionID, &c.SessionID},
		{a.FamilyID, ev.FamilyID, clear.FamilyID, &c.FamilyID},
		{a.IP, ev.IP, clear.IP, &c.IP},
	} {
		if f.got == "" {
			continue
		}
		if f.got != f.pseudo {
			return nil
		}
		*f.dst, named = f.clear, true
	}
	if !named {
		return nil
	}
	return &c
}

// persist makes a batch durable, retrying transient failures until it
// succeeds or ctx ends (drain timeout); it reports whether it succeeded.
func (in *Ingester) persist(ctx context.Context, log *slog.Logger, w *work) bool {
	step := func(op string, fn func(context.Context) error) bool {
		err := retry(ctx, in.cfg.RetryInitial, in.cfg.RetryMax, fn, func(err error, wait time.Duration) {
			in.m.Retries.WithLabelValues(op).Inc()
			if op != opProduceDLQ && op != opHandOff {
				in.setWriteErr(err)
			}
			log.Warn("retrying", "op", op, "in", wait.Round(time.Millisecond), "err", err)
		})
		if err != nil {
			log.Error("giving up for now; the batch is not committed and will be replayed", "op", op, "err", err)
			return false
		}
		return true
	}
	// Anomalies are inserted and handed on while the events are inserted:
	// a detection waits for one insert, not two. Both must succeed before
	// the batch can be committed.
	anomaliesDone := make(chan bool, 1)
	if len(w.anomalies) > 0 {
		go func() { anomaliesDone <- in.persistAnomalies(step, log, w) }()
	} else {
		anomaliesDone <- true
	}
	if n := w.events.Len(); n > 0 {
		ok := step(opInsertEvents, func(ctx context.Context) error {
			t0 := time.Now()
			if err := in.o.Sink.WriteEvents(ctx, &w.events); err != nil {
				return err
			}
			in.m.InsertDuration.WithLabelValues("events").Observe(time.Since(t0).Seconds())
			in.m.RowsInserted.WithLabelValues("events").Add(float64(n))
			in.setWriteErr(nil)
			return nil
		})
		if !ok {
			<-anomaliesDone
			return false
		}
	}
	if !<-anomaliesDone {
		return false
	}
	if len(w.dead) > 0 {
		if !step(opProduceDLQ, func(ctx context.Context) error { return in.produceDLQ(ctx, w.dead) }) {
			return false
		}
		ok := step(opInsertDeadLetters, func(ctx context.Context) error {
			t0 := time.Now()
			if err := in.o.Sink.WriteDeadLetters(ctx, w.dead); err != nil {
				return err
			}
			in.m.InsertDuration.WithLabelValues("dead_letters").Observe(time.Since(t0).Seconds())
			in.m.RowsInserted.WithLabelValues("dead_letters").Add(float64(len(w.dead)))
			in.setWriteErr(nil)
			return nil
		})
		if !ok {
			return false
		}
	}
	return true
}

// persistAnomalies inserts a batch's anomalies and hands them on (to the
// revoker's outbox), both with step's retries and at the same time: a
// revocation waits for neither the insert nor the events. It reports
// whether both succeeded; a hand-off retried after a failed insert is
// harmless, since intents are keyed by anomaly id.
func (in *Ingester) persistAnomalies(step func(string, func(context.Context) error) bool, log *slog.Logger, w *work) bool {
	handed := make(chan bool, 1)
	if in.o.OnAnomalies != nil {
		go func() {
			handed <- step(opHandOff, func(ctx context.Context) error { return in.o.OnAnomalies(ctx, w.anomalies) })
		}()
	} else {
		handed <- true
	}
	ok := step(opInsertAnomalies, func(ctx context.Context) error {
		t0 := time.Now()
		if err := in.o.Sink.WriteAnomalies(ctx, w.anomalies); err != nil {
			return err
		}
		in.m.InsertDuration.WithLabelValues("anomalies").Observe(time.Since(t0).Seconds())
		in.m.RowsInserted.WithLabelValues("anomalies").Add(float64(len(w.anomalies)))
		return nil // readiness follows the events insert, which runs alongside
	})
	if !<-handed || !ok {
		endAnomalySpans(w, "anomalies not stored or not handed on; the batch will be replayed")
		return false
	}
	endAnomalySpans(w, "")
	now := time.Now()
	for i, a := range w.anomalies {
		in.o.DetectMetrics.HandoffSeconds.Observe(now.Sub(w.readAt[i]).Seconds())
		log.Info("anomaly", "id", a.ID, "detector", a.Detector, "kind", a.Kind, "severity", a.Severity.String(),
			"shadow", a.Shadow, "offset", a.Offset, "event_time", a.FirstEventTime)
	}
	return true
}

// DLQ record size limits: one request per partition stays under the
// broker's default message.max.bytes of 1 MiB.
const (
	dlqMaxBatchBytes  = 1 << 20
	dlqMaxRecordBytes = 900 << 10 // key + value + headers of one record
	dlqMaxKeyBytes    = 16 << 10
)

func headersSize(hs []kafka.Header) int {
	n := 0
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 8
	}
	return n
}

// produceDLQ writes rejected messages to the dead-letter topic with their
// original key, value and headers plus vigil-* headers saying why and where from.
func (in *Ingester) produceDLQ(ctx context.Context, dead []DeadLetter) error {
	msgs := make([]kafka.Message, len(dead))
	for i, d := range dead {
		hs := make([]kafka.Header, 0, len(d.Headers)+6)
		for _, h := range d.Headers {
			hs = append(hs, kafka.Header{Key: h.Key, Value: h.Value})
		}
		hs = append(hs,
			kafka.Header{Key: "vigil-reason", Value: []byte(d.Reason)},
			kafka.Header{Key: "vigil-topic", Value: []byte(d.Topic)},
			kafka.Header{Key: "vigil-partition", Value: []byte(strconv.Itoa(int(d.Partition)))},
			kafka.Header{Key: "vigil-offset", Value: []byte(strconv.FormatInt(d.Offset, 10))},
		)
		if d.Field != "" {
			hs = append(hs, kafka.Header{Key: "vigil-field", Value: []byte(d.Field)})
		}
		if d.Detail != "" {
			hs = append(hs, kafka.Header{Key: "vigil-detail", Value: []byte(d.Detail)})
		}
		key, value := d.Key, d.Value
		if size := len(key) + len(value) + headersSize(hs); size > dlqMaxRecordBytes {
			// Brokers reject record batches over message.max.bytes (1 MiB by
			// default), so the record is cut to fit; the dead_letters row
			// keeps the whole message.
			hs = append(hs, kafka.Header{Key: "vigil-truncated-from", Value: []byte(strconv.Itoa(len(key) + len(value)))})
			key = key[:min(len(key), dlqMaxKeyBytes)]
			value = value[:max(0, min(len(value), dlqMaxRecordBytes-len(key)-headersSize(hs)))]
		}
		msgs[i] = kafka.Message{Key: key, Value: value, Headers: hs, Time: d.MessageTime}
	}
	if err := in.dlq.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("produce to %s: %w", in.o.DLQTopic, err)
	}
	return nil
}

// commit commits next (the offset after the batch) for the partition. A
// failed commit is not retried: the next batch commits a later offset, and
// after a rebalance the new owner replays, which the tables deduplicate.
//
// It returns the commit's error, for the trace.
func (in *Ingester) commit(log *slog.Logger, gen *kafka.Generation, partition int, next int64) error {
	t0 := time.Now()
	err := gen.CommitOffsets(map[string]map[int]int64{in.o.Topic: {partition: next}})
	if err != nil {
		in.m.CommitErrors.Inc()
		log.Warn("offset commit failed; will be replayed if not superseded", "offset", next, "err", err)
		return fmt.Errorf("commit offset %d: %w", next, err)
	}
	in.m.CommitDuration.Observe(time.Since(t0).Seconds())
	in.m.Commits.Inc()
	in.nCommitted.Add(1)
	return nil
}

// notPersisted describes a batch that was not made durable, "" when it was.
func notPersisted(ok bool) string {
	if ok {
		return ""
	}
	return "batch not persisted; it will be replayed"
}

// errString returns err's message, "" for nil.
func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// account updates counters once a batch is durable.
func (in *Ingester) account(w *work) {
	in.m.Batches.Inc()
	for t, n := range w.byType {
		if n > 0 {
			in.m.Events.WithLabelValues(schemas.Type(t).String()).Add(float64(n))
		}
	}
	for _, d := range w.dead {
		in.m.Invalid.WithLabelValues(string(d.Reason)).Inc()
	}
	if w.sli != nil {
		in.o.SLOMetrics.Add(in.o.SLOs, w.sli)
	}
	in.nEvents.Add(int64(w.events.Len()))
	in.nInvalid.Add(int64(len(w.dead)))
}

// kafkaLogger adapts kafka-go's Logger to slog at warn level.
type kafkaLogger struct {
	log  *slog.Logger
	what string
}

// Printf logs one kafka-go message at warn level.
func (k kafkaLogger) Printf(format string, args ...any) {
	k.log.Warn(k.what, "msg", fmt.Sprintf(format, args...))
}
