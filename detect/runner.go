package detect

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// RunnerOptions wires a WindowRunner.
type RunnerOptions struct {
	// Windows judges the windows; required.
	Windows *Windows
	// Times reads each partition's newest stored event time (see
	// PartitionTimes); required.
	Times func(ctx context.Context, since time.Time) (map[int32]time.Time, error)
	// Write makes anomalies durable and hands them on; a failure keeps
	// them pending and is retried next round, so it must be idempotent
	// (the anomaly ids are). Required.
	Write func(ctx context.Context, as []Anomaly) error
	// Logger logs failures; nil discards.
	Logger *slog.Logger
	// Now is the wall clock; nil means time.Now.
	Now func() time.Time
}

// ClickHouseTimes returns a RunnerOptions.Times reading db through conn.
func ClickHouseTimes(conn driver.Conn, db string) func(context.Context, time.Time) (map[int32]time.Time, error) {
	return func(ctx context.Context, since time.Time) (map[int32]time.Time, error) {
		return PartitionTimes(ctx, conn, db, since)
	}
}

// seedHorizon is how far back a runner taking over looks for the episodes
// its predecessor raised; an episode raised longer ago and still firing is
// raised again.
const seedHorizon = 6 * time.Hour

// WindowRunner runs the window detectors every detect.window.interval,
// aligned to it, while it is active (its process owns partition 0 of the
// events topic): it advances the watermark, judges the windows that became
// complete and writes their anomalies. Start it once; SetActive and
// Shutdown (idempotent, a last round then flush) are safe from any
// goroutine.
//
// A runner that becomes active takes over from whichever process ran the
// detectors before: it waits until every partition has moved or been
// watched for idle_after (so a long-dead partition does not drag its
// first watermark back), reopens the episodes raised in the last seedHorizon, replays the
// windows from the earliest of them (or catch_up before the watermark) so
// their state is what its predecessor's was, and writes only the replayed
// anomalies the anomalies table does not already hold.
type WindowRunner struct {
	o     RunnerOptions
	w     *Windows
	wm    *Watermark
	log   *slog.Logger
	every time.Duration

	amu         sync.Mutex // guards active, fresh and activations; never held for long (SetActive runs on the Kafka group goroutine)
	active      bool
	fresh       bool   // became active: take over before the next judged window
	activations uint64 // times it became active, so a takeover can tell it was not overtaken

	mu          sync.Mutex // serialises rounds; guards the round state below
	replayUntil time.Time  // anomalies ending at or before it are replays: written only if not yet stored
	pending     []Anomaly
	lastErr     string

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// NewWindowRunner returns an inactive, unstarted runner.
func NewWindowRunner(o RunnerOptions) (*WindowRunner, error) {
	if o.Windows == nil || o.Times == nil || o.Write == nil {
		return nil, errors.New("detect: a window runner needs Windows, Times and Write")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := o.Windows.cfg.Window
	return &WindowRunner{o: o, w: o.Windows, wm: NewWatermark(c.Lateness, c.IdleAfter), log: o.Logger, every: c.Interval, done: make(chan struct{})}, nil
}

// SetActive starts (true) or stops (false) judging windows. It returns at
// once; the next round does the work.
func (r *WindowRunner) SetActive(on bool) {
	r.amu.Lock()
	defer r.amu.Unlock()
	if on && !r.active {
		r.fresh = true
		r.activations++
	}
	r.active = on
	if on {
		r.w.o.Metrics.WindowActive.Set(1)
	} else {
		r.w.o.Metrics.WindowActive.Set(0)
	}
}

func (r *WindowRunner) state() (active, fresh bool, activation uint64) {
	r.amu.Lock()
	defer r.amu.Unlock()
	return r.active, r.fresh, r.activations
}

// Start launches the schedule and returns at once; it fails after Shutdown.
func (r *WindowRunner) Start(ctx context.Context) error {
	select {
	case <-r.done:
		return errors.New("detect: window runner already shut down")
	default:
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go r.loop(ctx)
	return nil
}

func (r *WindowRunner) loop(ctx context.Context) {
	defer close(r.done)
	for {
		now := r.o.Now()
		wait := r.every - time.Duration(now.UnixNano()%int64(r.every))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 10*r.every)
		_ = r.Round(rctx)
		cancel()
	}
}

// Round runs one round now: it advances the watermark, judges the windows
// complete under it and writes what they raised (and anything still
// pending). While the runner is inactive it only writes what is pending.
func (r *WindowRunner) Round(ctx context.Context) error { return r.roundOnce(ctx, false) }

func (r *WindowRunner) roundOnce(ctx context.Context, final bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.w.o.Metrics
	t0 := time.Now()
	var err error
	if active, fresh, n := r.state(); active {
		err = r.round(ctx, fresh, n, final)
	} else {
		err = r.flush(ctx)
	}
	m.WindowRoundSeconds.Observe(time.Since(t0).Seconds())
	if err != nil {
		m.WindowErrors.Inc()
		logWindowErr(r.log, &r.lastErr, err)
		return err
	}
	r.lastErr = ""
	return nil
}

func (r *WindowRunner) round(ctx context.Context, fresh bool, activation uint64, final bool) error {
	var since time.Time
	if v := r.wm.Value(); !v.IsZero() {
		since = v.Add(-time.Hour)
	}
	times, err := r.o.Times(ctx, since)
	if err != nil {
		return errors.Join(err, r.flush(ctx))
	}
	now := r.o.Now()
	wm, ok := r.wm.Update(times, now)
	if !ok {
		return r.flush(ctx)
	}
	m := r.w.o.Metrics
	m.Watermark.Set(float64(wm.Unix()))
	if fresh {
		if !r.wm.Settled(now) && !final {
			return r.flush(ctx) // a partition not seen moving yet may be long dead: wait
		}
		if err := r.takeOver(ctx, wm, activation); err != nil {
			return errors.Join(err, r.flush(ctx))
		}
	}
	as, err := r.w.Evaluate(ctx, time.Time{}, wm)
	for _, a := range as {
		if !slices.ContainsFunc(r.pending, func(p Anomaly) bool { return p.ID == a.ID }) { // a replay of one still pending
			r.pending = append(r.pending, a)
		}
	}
	if last := r.w.Last(); !last.IsZero() {
		m.WindowLag.Set(now.Sub(last).Seconds())
	}
	return errors.Join(err, r.flush(ctx))
}

// takeOver resets the judged windows and reopens the predecessor's
// episodes: judging resumes at the earliest episode reopened, or catch_up
// before the watermark, whichever is earlier.
func (r *WindowRunner) takeOver(ctx context.Context, wm time.Time, activation uint64) error {
	from := wm.Add(-r.w.cfg.Window.CatchUp)
	r.w.reset()
	earliest, err := r.w.Seed(ctx, from.Add(-seedHorizon))
	if err != nil {
		return err
	}
	start := from
	if !earliest.IsZero() && earliest.Before(start) {
		start = earliest
	}
	r.w.last = r.w.floor(start)
	// Everything up to the watermark may have been written by the
	// predecessor: check before writing.
	r.replayUntil = time.Unix(r.w.floor(wm), 0)
	r.amu.Lock()
	if r.activations == activation { // not lost and regained meanwhile
		r.fresh = false
	}
	r.amu.Unlock()
	return nil
}

// flush writes the pending anomalies, leaving out replays the anomalies
// table already holds; on failure they stay pending.
func (r *WindowRunner) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
	}
	var replays []string
	for _, a := range r.pending {
		if !a.WindowEnd.After(r.replayUntil) {
			replays = append(replays, a.ID)
		}
	}
	if len(replays) > 0 {
		known, err := r.w.Known(ctx, replays)
		if err != nil {
			return err
		}
		r.pending = slices.DeleteFunc(r.pending, func(a Anomaly) bool { return known[a.ID] })
		if len(r.pending) == 0 {
			return nil
		}
	}
	if err := r.o.Write(ctx, r.pending); err != nil {
		return err
	}
	for _, a := range r.pending {
		r.log.Info("window anomaly", "detector", a.Detector, "kind", a.Kind, "severity", a.Severity.String(), "tenant", a.Tenant, "id", a.ID,
			"window_end", a.WindowEnd)
	}
	clear(r.pending)
	r.pending = r.pending[:0]
	return nil
}

// Shutdown stops the schedule, runs a last round (if active) so the
// windows complete by now are judged, and writes what is pending, within
// ctx's deadline. It is idempotent; a call whose deadline passed first can
// be repeated to flush. Stop it before the ingester, while this process
// still owns partition 0.
func (r *WindowRunner) Shutdown(ctx context.Context) error {
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
		} else {
			close(r.done) // never started
		}
	})
	select {
	case <-r.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return r.roundOnce(ctx, true)
}
