package detect

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// Detector names, the `detector` column of the anomalies table.
const (
	TokenReuse         = "token_reuse"
	SessionHijack      = "session_hijack"
	UseAfterRevocation = "use_after_revocation"
)

// Indexes into family.raised of the detectors that realert.
const (
	idxTokenReuse    = 0
	idxSessionHijack = 1
	noRealert        = -1
)

// Observation is one event as the stream detectors see it: the event, its
// time as a state stamp, its client, and what earlier detectors found.
type Observation struct {
	// Event is the event being judged; detectors must not keep it.
	Event *schemas.Event
	at    stamp
	cl    client
	// reuse is set when token_reuse judged this event a replay.
	reuse bool
}

// Finding is what a detector reports about one event; the Partition turns
// it into an Anomaly.
type Finding struct {
	// Kind says what was found.
	Kind string
	// Severity ranks it.
	Severity Severity
	// Evidence is marshalled to the anomaly's JSON evidence.
	Evidence any
	// WindowStart is the time of the first event the judgement rests on
	// (the rotation of a replayed token, the other client's use); zero
	// means the offending event's.
	WindowStart time.Time
	// Key is the time the anomaly id derives from, with the detector and
	// the family; zero means the offending event's time.
	Key time.Time
}

// StreamDetector judges events one at a time against the state of their
// family.
//
// A Partition calls its detectors from one goroutine, in partition order,
// in the fixed order token_reuse, session_hijack, use_after_revocation.
// Each detector owns the family fields it documents, must update them the
// same way whether or not a finding is wanted (a rebuild replays history
// through Observe and discards the findings), must not keep the
// Observation, and must judge by event time only, so that a replay
// reaches the same findings. Detectors live in this package: the state
// they share is its compact, pointer-free family record, which a new
// detector extends (docs/detectors.md: State and restarts).
type StreamDetector interface {
	// Name is the detector's name, as in the anomalies table.
	Name() string
	// Observe judges o, an event of family f, and updates f; ok reports a finding.
	Observe(o *Observation, f *family, t *table) (fd Finding, ok bool)
}

// RegistryOptions wires a Registry.
type RegistryOptions struct {
	// Metrics receives the detectors' metrics; nil creates unregistered ones.
	Metrics *Metrics
	// Logger logs rebuilds; nil discards.
	Logger *slog.Logger
	// Now is the wall clock for detected_at; nil is time.Now.
	Now func() time.Time
}

// Registry holds the configured stream detectors and makes one Partition
// per owned partition. It is safe for concurrent use.
type Registry struct {
	cfg  Config
	dets []detectorSlot
	m    *Metrics
	log  *slog.Logger
	now  func() time.Time
}

type detectorSlot struct {
	d       StreamDetector
	idx     int
	shadow  bool
	realert time.Duration
}

// NewRegistry validates cfg and returns a Registry of its enabled detectors.
func NewRegistry(cfg Config, o RegistryOptions) (*Registry, error) {
	if err := cfg.Validate(); err != nil {
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
	r := &Registry{cfg: cfg, m: o.Metrics, log: o.Logger, now: o.Now}
	if c := cfg.TokenReuse; c.Enabled {
		r.dets = append(r.dets, detectorSlot{&tokenReuse{cfg: c, m: o.Metrics}, idxTokenReuse, c.Shadow, c.RealertAfter})
	}
	if c := cfg.SessionHijack; c.Enabled {
		centroids() // load the country table now, not on the first judgement
		r.dets = append(r.dets, detectorSlot{&sessionHijack{cfg: c, m: o.Metrics}, idxSessionHijack, c.Shadow, c.RealertAfter})
	}
	if c := cfg.UseAfterRevocation; c.Enabled {
		// One anomaly per revocation: the detector itself remembers it.
		r.dets = append(r.dets, detectorSlot{&useAfterRevocation{cfg: c}, noRealert, c.Shadow, 0})
	}
	return r, nil
}

// Enabled reports whether any stream detector is on.
func (r *Registry) Enabled() bool { return r != nil && len(r.dets) > 0 }

// Config returns the registry's configuration.
func (r *Registry) Config() Config { return r.cfg }

// Partition returns empty state for partition id. The Partition belongs
// to the caller's goroutine.
func (r *Registry) Partition(id int32) *Partition {
	return &Partition{r: r, id: id, label: strconv.Itoa(int(id)), t: newTable(r.cfg.StateTTL)}
}

// Partition is the stream detectors' state for one partition. It is not
// safe for concurrent use: one ingest worker owns it.
type Partition struct {
	r      *Registry
	id     int32
	label  string
	t      *table
	obs    Observation
	agents agentCache
	// restoring is set while Rebuild replays history: nothing expires,
	// because the replay skips most uses and so knows no family's last one.
	restoring bool
	n         uint64 // events observed, for sampling the timing metric
}

// timingSample times one event in this many.
const timingSample = 64

// Observe judges ev, read at offset, appends any anomalies to out and
// returns it. Events without a family (login.failed) are ignored.
func (p *Partition) Observe(ev *schemas.Event, offset int64, out []Anomaly) []Anomaly {
	p.n++
	if p.n%timingSample == 0 {
		t0 := time.Now()
		out = p.observe(ev, offset, out, true)
		p.r.m.EventSeconds.Observe(time.Since(t0).Seconds())
		return out
	}
	return p.observe(ev, offset, out, true)
}

func (p *Partition) observe(ev *schemas.Event, offset int64, out []Anomaly, emit bool) []Anomaly {
	if ev.FamilyID == "" || ev.Type == schemas.TypeLoginFailed || len(p.r.dets) == 0 {
		return out // no session yet (a failed login may name one it tried)
	}
	t := p.t
	o := &p.obs
	*o = Observation{Event: ev, at: t.stampOf(ev.Time), cl: clientOf(ev, &p.agents)}
	if !p.restoring {
		if n := t.maybeSweep(); n > 0 {
			p.r.m.Expired.Add(float64(n))
		}
	}
	f := t.get(familyKey(ev.Tenant, ev.FamilyID))
	if !p.restoring && t.expired(f) {
		// Idle past state_ttl but not swept yet: judged as forgotten, so
		// that expiry does not depend on when sweeps happen to run.
		*f = family{key: f.key}
	}
	for _, s := range p.r.dets {
		fd, ok := s.d.Observe(o, f, t)
		if !ok {
			continue
		}
		if s.idx != noRealert {
			if r := f.raised[s.idx]; r != 0 && since(r, o.at) < s.realert {
				if emit {
					p.r.m.Suppressed.WithLabelValues(s.d.Name()).Inc()
				}
				continue
			}
			f.raised[s.idx] = o.at
		}
		if emit {
			out = append(out, p.anomaly(s, fd, ev, offset))
		}
	}
	if sec := uint32(max(ev.Time.Unix(), 0)); sec > f.lastSeen {
		f.lastSeen = sec
	}
	if emit && p.n%4096 == 1 {
		p.publish()
	}
	return out
}

// anomaly builds the Anomaly of a finding about ev.
func (p *Partition) anomaly(s detectorSlot, fd Finding, ev *schemas.Event, offset int64) Anomaly {
	name := s.d.Name()
	ev1, err := json.Marshal(fd.Evidence)
	if err != nil {
		ev1 = fmt.Appendf(nil, `{"error":%q}`, err.Error())
	}
	if fd.WindowStart.IsZero() || fd.WindowStart.After(ev.Time) {
		fd.WindowStart = ev.Time
	}
	if fd.Key.IsZero() {
		fd.Key = ev.Time
	}
	a := Anomaly{
		ID:       AnomalyID(name, []string{ev.Tenant, ev.FamilyID}, fd.Key),
		Detector: name, Kind: fd.Kind, Severity: fd.Severity, Shadow: s.shadow,
		Tenant: ev.Tenant, UserID: ev.UserID, SessionID: ev.SessionID, FamilyID: ev.FamilyID, IP: ev.IP,
		Evidence: string(ev1), FirstEventTime: ev.Time, DetectedAt: p.r.now().UTC(),
		WindowStart: fd.WindowStart, WindowEnd: ev.Time, Partition: p.id, Offset: offset,
	}
	p.r.m.Anomalies.WithLabelValues(name, fd.Kind, fd.Severity.String(), strconv.FormatBool(s.shadow)).Inc()
	return a
}

// Families returns the number of families held.
func (p *Partition) Families() int { return p.t.len() }

// Close drops the partition's state and its gauges.
func (p *Partition) Close() {
	p.r.m.Families.DeleteLabelValues(p.label)
	p.t = newTable(p.r.cfg.StateTTL)
}

// publish updates the partition's family gauge.
func (p *Partition) publish() { p.r.m.Families.WithLabelValues(p.label).Set(float64(p.t.len())) }
