package alerts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
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
		Active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vigil_alerts_active", Help: "Anomaly alerts kept active (re-sent until their endsAt)."}),
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

// Sender keeps anomaly alerts active in every configured Alertmanager.
// Handle is safe for concurrent use and never waits for Alertmanager: an
// anomaly is durable in ClickHouse before it is handed over, and a
// restarted Sender reloads the active ones. Start returns at once;
// Shutdown makes a last post bounded by its context and is idempotent.
type Sender struct {
	o      Options
	b      builder
	client *Client
	log    *slog.Logger
	m      *Metrics

	mu     sync.Mutex
	active map[string]Alert // anomaly id → alert, until its endsAt passes
	dirty  bool             // alerts added since the last post

	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	started  bool
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
	return &Sender{
		o: o, b: builder{cfg: o.Config, action: o.Action}, client: client, log: o.Logger, m: o.Metrics,
		active: map[string]Alert{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// Handle adds the alerts of as (those of at least min_severity) and wakes
// the sender; it returns at once.
func (s *Sender) Handle(_ context.Context, as []detect.Anomaly) error {
	now := s.o.Now()
	s.mu.Lock()
	added := 0
	for i := range as {
		a := &as[i]
		if !s.b.wanted(a) || !s.b.endsAt(a).After(now) {
			continue
		}
		if _, ok := s.active[a.ID]; ok {
			continue
		}
		s.active[a.ID] = s.b.alert(a)
		added++
	}
	if added > 0 {
		s.dirty = true
	}
	n := len(s.active)
	s.mu.Unlock()
	s.m.Active.Set(float64(n))
	if added > 0 {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

// Start reloads the active anomalies (retried in the background until it
// succeeds) and starts posting.
func (s *Sender) Start(ctx context.Context) error {
	if s.started {
		return errors.New("alerts: Start called twice")
	}
	s.started = true
	go s.loop(context.WithoutCancel(ctx))
	return nil
}

// Shutdown stops the sender after a last post of the active alerts,
// bounded by ctx. It is idempotent.
func (s *Sender) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stop) })
	if !s.started {
		return nil
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		return fmt.Errorf("alerts: shutdown: %w", ctx.Err())
	}
	s.client.CloseIdleConnections()
	return nil
}

// amState is the posting state of one Alertmanager.
type amState struct {
	url      string
	label    string
	next     time.Time // the next post is due
	failures int       // consecutive failures (backoff)
}

func (s *Sender) loop(ctx context.Context) {
	defer close(s.done)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.stop:
		case <-s.done:
		}
		cancel()
	}()
	s.reload(runCtx)
	ams := make([]*amState, len(s.o.Config.Alertmanagers))
	for i, u := range s.o.Config.Alertmanagers {
		label := u
		if p, err := url.Parse(u); err == nil {
			label = p.Host
		}
		ams[i] = &amState{url: u, label: label}
		s.m.Errors.WithLabelValues(label) // present at 0 before the first failure
		s.m.Sent.WithLabelValues(label)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		stopping := false
		select {
		case <-s.stop:
			stopping = true
		case <-s.wake:
		case <-timer.C:
		}
		now := s.o.Now()
		batch, dirty := s.snapshot(now)
		for _, am := range ams {
			if !dirty && now.Before(am.next) && !stopping {
				continue
			}
			pctx := runCtx
			if stopping {
				var c context.CancelFunc
				pctx, c = context.WithTimeout(context.WithoutCancel(runCtx), s.o.Config.Timeout)
				defer c()
			}
			s.post(pctx, am, batch, now)
		}
		if stopping {
			return
		}
		wait := time.Duration(1<<62 - 1)
		for _, am := range ams {
			wait = min(wait, am.next.Sub(s.o.Now()))
		}
		timer.Reset(max(wait, 10*time.Millisecond))
	}
}

// post sends batch to one Alertmanager and schedules its next post: the
// resend interval after a success, a jittered backoff after a failure.
func (s *Sender) post(ctx context.Context, am *amState, batch []Alert, now time.Time) {
	if len(batch) == 0 {
		am.failures, am.next = 0, now.Add(s.o.Config.ResendInterval)
		return
	}
	err := s.client.Post(ctx, am.url, batch)
	if err != nil {
		am.failures++
		s.m.Errors.WithLabelValues(am.label).Inc()
		d := min(time.Second<<min(am.failures-1, 5), 30*time.Second, s.o.Config.ResendInterval)
		d = d/2 + rand.N(d/2+1)
		am.next = now.Add(d)
		s.log.Warn("alerts: posting to Alertmanager failed; retrying", "alertmanager", am.label, "alerts", len(batch), "in", d, "err", err)
		return
	}
	if am.failures > 0 {
		s.log.Info("alerts: Alertmanager reachable again", "alertmanager", am.label, "alerts", len(batch))
	}
	am.failures, am.next = 0, now.Add(s.o.Config.ResendInterval)
	s.m.Sent.WithLabelValues(am.label).Add(float64(len(batch)))
}

// snapshot returns the active alerts (dropping those whose endsAt passed:
// Alertmanager has resolved them) and whether any are new since the last call.
func (s *Sender) snapshot(now time.Time) ([]Alert, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alert, 0, len(s.active))
	for id, a := range s.active {
		if !a.EndsAt.After(now) {
			delete(s.active, id)
			continue
		}
		out = append(out, a)
	}
	dirty := s.dirty
	s.dirty = false
	s.m.Active.Set(float64(len(s.active)))
	return out, dirty
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
		wait := min(time.Second<<min(attempt, 5), 30*time.Second)
		s.log.Warn("alerts: reloading active anomalies failed; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// Active returns the alerts being kept active, in no particular order.
func (s *Sender) Active() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Alert, 0, len(s.active))
	for _, a := range s.active {
		out = append(out, a)
	}
	return out
}
