package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/detect"
)

// Metrics are the alert sender's Prometheus metrics; alertmanager is the
// Alertmanager's host:port, never a user, session or address of a subject.
type Metrics struct {
	// Sent counts alerts posted successfully, by Alertmanager.
	Sent *prometheus.CounterVec
	// Errors counts failed posts, by Alertmanager (retried).
	Errors *prometheus.CounterVec
	// Active is the number of alerts being kept active.
	Active prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Sent:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_alerts_sent_total", Help: "Alerts posted to an Alertmanager (each resend counts)."}, []string{"alertmanager"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vigil_alerts_errors_total", Help: "Failed posts to an Alertmanager (retried with backoff)."}, []string{"alertmanager"}),
		Active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_alerts_active", Help: "Anomaly alerts firing (re-sent until their endsAt)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Sent, m.Errors, m.Active)
	}
	return m
}

// Options configure a Sender.
type Options struct {
	// Config is the alerts section; it must be valid and enabled.
	Config Config
	// Action describes what vigil does about an anomaly (for the
	// description), e.g. "revoke_family (dry-run)"; nil says "alert only".
	Action func(*detect.Anomaly) string
	// Active reloads, at start, the stored anomalies whose alerts may still
	// be active: those whose window closed at or after since.
	Active func(ctx context.Context, since time.Time) ([]detect.Anomaly, error)
	// Metrics, Logger and Now default to unregistered metrics, a discarding logger and time.Now.
	Metrics *Metrics
	Logger  *slog.Logger
	Now     func() time.Time
}

// KeepResolved is how long a resolved alert (its endsAt passed) is still
// posted, as Prometheus does: an Alertmanager that restarted around the
// endsAt, and so lost the alert, still learns of the resolve and notifies it.
const KeepResolved = 15 * time.Minute

// maxBatch is the most alerts one POST carries; more go in several posts.
const maxBatch = 64

// Sender keeps anomaly alerts active in every configured Alertmanager.
// Handle is safe for concurrent use and never waits for Alertmanager: the
// pipeline hands an anomaly over as it writes it to ClickHouse, and a
// restarted Sender reloads from there the ones still active. Each
// Alertmanager has its own goroutine, so a slow or unreachable one delays
// no other. Start returns at once; Shutdown makes a last post bounded by
// its context and is idempotent.
type Sender struct {
	o      Options
	b      builder
	client *Client
	log    *slog.Logger
	m      *Metrics
	ams    []*amWorker

	mu      sync.Mutex
	alerts  map[string]Alert // anomaly id → alert, until KeepResolved after its endsAt
	started bool
	stopped bool
	stopCtx context.Context // Shutdown's context, bounding the last posts

	stop      chan struct{}
	cancelRun context.CancelFunc
	wg        sync.WaitGroup
}

// amWorker is one Alertmanager's posting goroutine state.
type amWorker struct {
	url, label string
	wake       chan struct{} // new alerts to post
}

// NewSender validates o and returns a Sender.
func NewSender(o Options) (*Sender, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if !o.Config.Enabled() {
		return nil, errors.New("alerts: no alerts.alertmanagers configured")
	}
	client, err := NewClient(o.Config)
	if err != nil {
		return nil, err
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
	s := &Sender{
		o: o, b: builder{cfg: o.Config, action: o.Action}, client: client, log: o.Logger, m: o.Metrics,
		alerts: map[string]Alert{}, stop: make(chan struct{}),
	}
	for _, u := range o.Config.Alertmanagers {
		label := u
		if p, err := url.Parse(u); err == nil {
			label = p.Host
		}
		s.ams = append(s.ams, &amWorker{url: u, label: label, wake: make(chan struct{}, 1)})
		s.m.Errors.WithLabelValues(label) // present at 0 before the first failure
		s.m.Sent.WithLabelValues(label)
	}
	return s, nil
}

// Handle adds the alerts of as (those of at least min_severity whose
// endsAt is still ahead) and wakes the posting goroutines; it returns at
// once and never fails.
func (s *Sender) Handle(_ context.Context, as []detect.Anomaly) error {
	now := s.o.Now()
	s.mu.Lock()
	added := 0
	for i := range as {
		a := &as[i]
		if !s.b.wanted(a) || !s.b.endsAt(a).After(now) {
			continue
		}
		if _, ok := s.alerts[a.ID]; ok {
			continue
		}
		s.alerts[a.ID] = s.b.alert(a)
		added++
	}
	s.m.Active.Set(float64(s.firing(now)))
	s.mu.Unlock()
	if added > 0 {
		for _, am := range s.ams {
			select {
			case am.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// Start reloads the active anomalies (retried in the background until it
// succeeds) and starts one posting goroutine per Alertmanager.
func (s *Sender) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.stopped:
		return errors.New("alerts: Start after Shutdown")
	case s.started:
		return errors.New("alerts: Start called twice")
	}
	s.started = true
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancelRun = cancel
	s.wg.Add(1 + len(s.ams))
	go func() {
		defer s.wg.Done()
		s.reload(runCtx)
	}()
	for _, am := range s.ams {
		go func() {
			defer s.wg.Done()
			s.run(runCtx, am)
		}()
	}
	return nil
}

// Shutdown stops the sender after a last post of the alerts to each
// Alertmanager (concurrently), bounded by ctx and alerts.timeout. It is
// idempotent.
func (s *Sender) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	started := s.started
	if !s.stopped {
		s.stopped, s.stopCtx = true, ctx
		close(s.stop)
		if s.cancelRun != nil {
			s.cancelRun() // abort posts and backoffs in flight; the last post uses stopCtx
		}
	}
	s.mu.Unlock()
	defer s.client.CloseIdleConnections()
	if !started {
		return nil
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("alerts: shutdown: %w", ctx.Err())
	}
}

// run posts to one Alertmanager: at once when alerts are added (unless it
// is backing off after a failure), every resend interval otherwise, and a
// last time when the sender stops.
func (s *Sender) run(ctx context.Context, am *amWorker) {
	failures := 0
	var next time.Time // when the next post is due
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-s.stop:
			s.lastPost(am)
			return
		case <-am.wake:
			if failures > 0 && s.o.Now().Before(next) {
				continue // backing off: the timer posts them
			}
		case <-timer.C:
		}
		batch := s.snapshot(s.o.Now())
		err := s.post(ctx, am, batch)
		now := s.o.Now() // after the post, which may have taken up to alerts.timeout
		switch {
		case ctx.Err() != nil: // Shutdown cancelled the post
			s.lastPost(am)
			return
		case err != nil:
			failures++
			s.m.Errors.WithLabelValues(am.label).Inc()
			d := min(time.Second<<min(failures-1, 5), 30*time.Second, s.o.Config.ResendInterval)
			d = d/2 + rand.N(d/2+1)
			next = now.Add(d)
			s.log.Warn("alerts: posting to Alertmanager failed; retrying", "alertmanager", am.label, "alerts", len(batch), "in", d, "err", err)
		default:
			if failures > 0 {
				s.log.Info("alerts: Alertmanager reachable again", "alertmanager", am.label, "alerts", len(batch))
			}
			failures, next = 0, now.Add(s.o.Config.ResendInterval)
		}
		timer.Reset(next.Sub(now))
	}
}

// lastPost posts the alerts once more as the sender stops, bounded by
// Shutdown's context and alerts.timeout; a failure is logged, not retried.
func (s *Sender) lastPost(am *amWorker) {
	s.mu.Lock()
	parent := s.stopCtx
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(parent, s.o.Config.Timeout)
	defer cancel()
	batch := s.snapshot(s.o.Now())
	if err := s.post(ctx, am, batch); err != nil {
		s.log.Warn("alerts: last post before stopping failed", "alertmanager", am.label, "alerts", len(batch), "err", err)
	}
}

// post sends batch to one Alertmanager, maxBatch alerts per request.
func (s *Sender) post(ctx context.Context, am *amWorker, batch []Alert) error {
	for chunk := range slices.Chunk(batch, maxBatch) {
		if err := s.client.Post(ctx, am.url, chunk); err != nil {
			return err
		}
		s.m.Sent.WithLabelValues(am.label).Add(float64(len(chunk)))
	}
	return nil
}

// snapshot returns the alerts to post: the active ones and those resolved
// less than KeepResolved ago; older ones are forgotten.
func (s *Sender) snapshot(now time.Time) []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alert, 0, len(s.alerts))
	for id, a := range s.alerts {
		if !a.EndsAt.Add(KeepResolved).After(now) {
			delete(s.alerts, id)
			continue
		}
		out = append(out, a)
	}
	s.m.Active.Set(float64(s.firing(now)))
	return out
}

// firing counts the alerts whose endsAt is ahead; s.mu must be held.
func (s *Sender) firing(now time.Time) int {
	n := 0
	for _, a := range s.alerts {
		if a.EndsAt.After(now) {
			n++
		}
	}
	return n
}

// reload restores the alerts of stored anomalies still active, retrying
// until it succeeds or the sender stops: a restart loses no active alert
// (resolved ones are not loaded, so not resent).
func (s *Sender) reload(ctx context.Context) {
	if s.o.Active == nil {
		return
	}
	for attempt := 0; ; attempt++ {
		as, err := s.o.Active(ctx, s.o.Now().Add(-s.o.Config.Hold))
		if err == nil {
			_ = s.Handle(ctx, as)
			if len(as) > 0 {
				s.log.Info("alerts: reloaded active anomalies", "anomalies", len(as))
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := min(time.Second<<min(attempt, 5), 30*time.Second)
		s.log.Warn("alerts: reloading active anomalies failed; retrying", "in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Active returns the alerts still firing (endsAt ahead), in no particular order.
func (s *Sender) Active() []Alert {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alert, 0, len(s.alerts))
	for _, a := range s.alerts {
		if a.EndsAt.After(now) {
			out = append(out, a)
		}
	}
	return out
}
