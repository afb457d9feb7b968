package sim

import (
	"container/heap"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/sessionapi"
	"github.com/vigilhq/vigil/sim/truth"
)

// Simulator is a session service and its users: a discrete-event model that
// emits lifecycle events in event-time order, runs scenarios, and obeys the
// revocations it receives through its API.
//
// Next and Close belong to one goroutine; Revoke (the API side), Stats and
// Now may be called from any goroutine at any time.
type Simulator struct {
	cfg   Config
	rng   *rand.Rand
	start int64 // event time, ns
	end   int64 // 0: no end
	now   int64
	wall  func() time.Time

	users    []user
	devices  []device
	sessions []session
	free     []int32
	inUse    []int32 // sessions a client is actively using

	queue   schedule
	seq     uint64
	nextBg  int64 // next background arrival
	idSeq   uint64
	runID   string
	serials uint64 // session serial numbers

	pending []pendingEvent
	head    int

	outageUntil int64   // validations fail until then
	slow        float64 // latency factor during incidents

	instances []*instance
	unstamped []*instance // first offending event handed out, wall time not yet taken
	onTruth   func(truth.Scenario)
	done      bool

	// revocations: shared with API goroutines.
	rv struct {
		mu       sync.Mutex
		sessions map[string]int32 // live session id → slot
		families map[string]int32 // live family id → slot
		users    map[string]int32 // user id → index
		revoked  map[string]bool  // "s:"/"f:" + id, revoked and not yet forgotten
		ignore   map[int32]int32  // slots whose revocations are not enforced → their user
		queue    []sessionapi.Request
		flag     atomic.Bool
	}
	// counters are atomics so Stats and Now may be read from any goroutine
	// (a progress display) while the event loop runs.
	stats struct {
		events, logins, loginFailed, revocations, live, now atomic.Int64
	}
}

// Stats counts what the simulator emitted.
type Stats struct {
	Events       int64 // events handed out
	Logins       int64 // session.created events
	LoginFailed  int64 // login.failed events
	Revocations  int64 // revocations received and applied
	LiveSessions int   // sessions alive now
}

// session is one login: a refresh-token family on one device.
type session struct {
	id, family string
	famHash    uint64
	user, dev  int32
	serial     uint64
	gen        int32 // generation of the current refresh token
	lastSeen   int64
	lastRefr   int64
	inUsePos   int32 // index in inUse, -1 when idle
	ver        uint32
	live       bool
	revoked    bool // revoked and enforced: every use fails
	ignoreRev  bool // the service does not enforce revocations of it
	owner      *instance
}

type pendingEvent struct {
	ev        schemas.Event
	inst      *instance
	offending bool
}

// item kinds in the schedule.
const (
	itRefresh = iota
	itBurstEnd
	itResume
	itIdleExpire
	itAbsExpire
	itLogin
	itActor
	itScenario
)

type item struct {
	at   int64
	seq  uint64
	kind uint8
	idx  int32 // session or device
	ver  uint64
	inst *instance
	spec int
}

type schedule []item

func (q schedule) Len() int { return len(q) }
func (q schedule) Less(i, j int) bool {
	return q[i].at < q[j].at || q[i].at == q[j].at && q[i].seq < q[j].seq
}
func (q schedule) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *schedule) Push(x any)   { *q = append(*q, x.(item)) }
func (q *schedule) Pop() any {
	old := *q
	it := old[len(old)-1]
	*q = old[:len(old)-1]
	return it
}

// Option configures a Simulator.
type Option func(*Simulator)

// WithWallClock sets the clock that stamps when a scenario's first offending
// event was produced (default time.Now).
func WithWallClock(now func() time.Time) Option { return func(s *Simulator) { s.wall = now } }

// WithTruth receives each scenario instance's ground truth when it ends
// (and, at Close, for instances still running).
func WithTruth(f func(truth.Scenario)) Option { return func(s *Simulator) { s.onTruth = f } }

// New builds the simulated world from cfg (defaults applied) and schedules
// its scenarios.
func New(cfg Config, opts ...Option) (*Simulator, error) {
	cfg = cfg.Defaults()
	if cfg.Start.IsZero() {
		cfg.Start = time.Now().UTC()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Simulator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), wall: time.Now, slow: 1}
	for _, o := range opts {
		o(s)
	}
	s.start = cfg.Start.UnixNano()
	s.now = s.start
	s.stats.now.Store(s.start)
	if cfg.Duration > 0 {
		s.end = s.start + int64(cfg.Duration)
	}
	s.runID = hexID("", cfg.Seed, uint64(s.start))[:8]
	s.rv.sessions = map[string]int32{}
	s.rv.families = map[string]int32{}
	s.rv.users = make(map[string]int32, cfg.Users)
	s.rv.revoked = map[string]bool{}
	s.rv.ignore = map[int32]int32{}
	s.buildWorld()
	for i := range s.users {
		s.rv.users[s.users[i].id] = int32(i)
	}
	s.warmStart()
	for i, sp := range cfg.Scenarios {
		s.at(s.start+int64(sp.At), item{kind: itScenario, spec: i})
	}
	s.nextBg = s.start + s.bgGap()
	return s, nil
}

// Config returns the configuration in effect (defaults applied).
func (s *Simulator) Config() Config { return s.cfg }

// Stats returns counters of what was emitted so far; safe from any goroutine.
func (s *Simulator) Stats() Stats {
	return Stats{
		Events: s.stats.events.Load(), Logins: s.stats.logins.Load(), LoginFailed: s.stats.loginFailed.Load(),
		Revocations: s.stats.revocations.Load(), LiveSessions: int(s.stats.live.Load()),
	}
}

// Now returns the event time of the last event handed out; safe from any
// goroutine.
func (s *Simulator) Now() time.Time { return time.Unix(0, s.stats.now.Load()).UTC() }

func (s *Simulator) at(t int64, it item) {
	s.seq++
	it.at, it.seq = t, s.seq
	heap.Push(&s.queue, it)
}

// bgGap draws the gap to the next background arrival (Poisson at the
// current rate).
func (s *Simulator) bgGap() int64 {
	rate := s.cfg.Rate
	if s.cfg.LoadCurve {
		rate *= load(time.Unix(0, s.now).UTC())
	}
	return int64(s.rng.ExpFloat64()/rate*1e9) + 1
}

// Next returns the next event in event-time order, or nil when the run's
// duration is over. The event is valid until the next call.
func (s *Simulator) Next() *schemas.Event {
	s.stamp()
	for s.head == len(s.pending) {
		s.pending, s.head = s.pending[:0], 0
		if s.done {
			return nil
		}
		if s.rv.flag.Load() {
			s.applyRevocations()
			continue
		}
		if len(s.queue) > 0 && s.queue[0].at <= s.nextBg {
			it := heap.Pop(&s.queue).(item)
			if s.end > 0 && it.at >= s.end {
				s.done = true
				return nil
			}
			s.now = it.at
			s.handle(it)
			continue
		}
		if s.end > 0 && s.nextBg >= s.end {
			s.done = true
			return nil
		}
		s.now = s.nextBg
		s.nextBg = s.now + s.bgGap()
		s.background()
	}
	p := &s.pending[s.head]
	s.head++
	if p.inst != nil {
		p.inst.observe(s, &p.ev, p.offending)
	}
	s.stats.events.Add(1)
	s.stats.now.Store(s.now)
	return &p.ev // pending is only reused once every event was handed out
}

// Key returns the Kafka key of e: its family, else its session, else its
// user, else its IP (so every family stays in order on one partition).
func Key(e *schemas.Event) string {
	switch {
	case e.FamilyID != "":
		return e.FamilyID
	case e.SessionID != "":
		return e.SessionID
	case e.UserID != "":
		return e.UserID
	}
	return e.IP
}

// stamp records the wall-clock time at which the first offending events
// handed out by the previous Next were taken: the caller asks for the next
// event only once it has dealt with (paced, queued for Kafka) the last one.
func (s *Simulator) stamp() {
	if len(s.unstamped) == 0 {
		return
	}
	now := s.wall().UTC()
	for _, in := range s.unstamped {
		in.rec.FirstOffendingWall = now
	}
	s.unstamped = s.unstamped[:0]
}

// Close ends every running scenario instance and reports its truth.
func (s *Simulator) Close() {
	s.stamp()
	for _, in := range s.instances {
		in.finish(s)
	}
}

// emit queues an event at the current time.
func (s *Simulator) emit(e schemas.Event, inst *instance, offending bool) {
	s.pending = append(s.pending, pendingEvent{ev: e, inst: inst, offending: offending})
}

// base returns an event of type t at the current time with an id and source.
func (s *Simulator) base(t schemas.Type) schemas.Event {
	s.idSeq++
	return schemas.Event{
		ID:   "ev-" + s.runID + "-" + strconv.FormatUint(s.idSeq, 10),
		Type: t, Time: time.Unix(0, s.now).UTC(), Source: s.cfg.Source, SampleRate: 1,
	}
}

// onDevice fills user and client fields from device d.
func (s *Simulator) onDevice(e *schemas.Event, d int32) {
	dv := &s.devices[d]
	u := &s.users[dv.user]
	n := dv.net()
	e.Tenant, e.UserID, e.DeviceID, e.UserAgent = u.tenant, u.id, dv.id, dv.ua
	e.IP, e.ASN, e.Country = n.ip, n.asn, n.country
}

// onSession fills user, client and session fields from session x.
func (s *Simulator) onSession(e *schemas.Event, x int32) {
	ss := &s.sessions[x]
	s.onDevice(e, ss.dev)
	e.SessionID, e.FamilyID = ss.id, ss.family
}

// tokenID is the opaque id of generation gen of a family's refresh token.
func tokenID(famHash uint64, gen int32) string {
	return hexID("rt_", famHash, uint64(gen))
}

// asClient overrides the client fields of e with an attacker's.
func asClient(e *schemas.Event, c client) {
	e.IP, e.ASN, e.Country, e.UserAgent, e.DeviceID = c.ip, c.asn, c.country, c.ua, c.device
}

// client is a non-user client (attacker or shared network).
type client struct {
	network
	ua, device string
}
