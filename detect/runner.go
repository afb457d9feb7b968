package detect

import (
	"context"
	"errors"
	"log/slog"
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

// WindowRunner runs the window detectors every detect.window.interval,
// aligned to it, while it is active (its process owns partition 0 of the
// events topic): it advances the watermark, judges the windows that became
// complete and writes their anomalies. Start it once; SetActive and
// Shutdown (idempotent, a last round then flush) are safe from any
// goroutine.
type WindowRunner struct {
	o     RunnerOptions
	w     *Windows
	wm    *Watermark
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex // guards the round state below and serialises rounds
	active  bool
	fresh   bool // became active: reset and seed before the next round
	pending []Anomaly
	lastErr string

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

// SetActive starts (true) or stops (false) judging windows; a runner that
// becomes active starts over from its watermark less catch_up and reopens
// the episodes recorded in the anomalies table.
func (r *WindowRunner) SetActive(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on && !r.active {
		r.fresh = true
	}
	r.active = on
	if on {
		r.w.o.Metrics.WindowActive.Set(1)
	} else {
		r.w.o.Metrics.WindowActive.Set(0)
	}
}

// Start launches the schedule and returns at once.
func (r *WindowRunner) Start(ctx context.Context) error {
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
func (r *WindowRunner) Round(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.w.o.Metrics
	t0 := r.o.Now()
	var err error
	if r.active {
		err = r.round(ctx)
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

func (r *WindowRunner) round(ctx context.Context) error {
	var since time.Time
	if v := r.wm.Value(); !v.IsZero() {
		since = v.Add(-time.Hour)
	}
	times, err := r.o.Times(ctx, since)
	if err != nil {
		return err
	}
	now := r.o.Now()
	wm, ok := r.wm.Update(times, now)
	if !ok {
		return nil
	}
	m := r.w.o.Metrics
	m.Watermark.Set(float64(wm.Unix()))
	if r.fresh {
		from := wm.Add(-r.w.cfg.Window.CatchUp)
		r.w.reset()
		if err := r.w.Seed(ctx, from); err != nil {
			return err
		}
		r.fresh = false
		r.w.last = r.w.floor(from)
	}
	as, err := r.w.Evaluate(ctx, time.Time{}, wm)
	r.pending = append(r.pending, as...)
	if last := r.w.Last(); !last.IsZero() {
		m.WindowLag.Set(now.Sub(last).Seconds())
	}
	return errors.Join(err, r.flush(ctx))
}

// flush writes the pending anomalies; on failure they stay pending.
func (r *WindowRunner) flush(ctx context.Context) error {
	if len(r.pending) == 0 {
		return nil
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
// ctx's deadline. It is idempotent. Stop it before the ingester, while
// this process still owns partition 0.
func (r *WindowRunner) Shutdown(ctx context.Context) error {
	var err error
	r.stopOnce.Do(func() {
		if r.cancel != nil {
			r.cancel()
			select {
			case <-r.done:
			case <-ctx.Done():
				err = ctx.Err()
				return
			}
		}
		err = r.Round(ctx)
	})
	return err
}
