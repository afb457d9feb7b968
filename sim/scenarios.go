package sim

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/truth"
)

// scenarioDef is one kind of scenario.
type scenarioDef struct {
	name      string
	class     string
	expect    []string      // detectors that should fire
	duration  time.Duration // default length
	count     int           // default instances (attacks) or subjects (benign)
	perVictim bool          // one instance (and truth record) per count
	wide      bool          // about the whole service: every tenant, no subjects
	minRun    time.Duration // an instance runs at least this long, however short its slot
	note      string
	// start prepares instance in and returns its first step.
	start func(s *Simulator, in *instance) stepFunc
}

// stepFunc runs one step of a scenario at s.now and returns the next step
// and the delay until it, or nil when the instance is over.
type stepFunc func(s *Simulator, in *instance) (stepFunc, time.Duration)

var scenarioByName = map[string]*scenarioDef{}

func init() {
	for _, d := range []*scenarioDef{
		{name: "token_theft_replay", class: truth.ClassAttack, expect: []string{"token_reuse"}, duration: 90 * time.Second, count: 3, perVictim: true,
			note: "an already-exchanged refresh token replayed from another client, then an older generation", start: startTheft},
		{name: "concurrent_hijack", class: truth.ClassAttack, expect: []string{"session_hijack"}, duration: 60 * time.Second, count: 2, perVictim: true,
			note: "a session used from another country and ASN while its owner keeps using it", start: startHijack},
		{name: "credential_stuffing", class: truth.ClassAttack, expect: []string{"login_storm"}, duration: 60 * time.Second, count: 1,
			note: "a small pool of hosting IPs tries a leaked list: many users, 1–2 tries each, tiny success rate", start: startStuffing},
		{name: "password_spraying", class: truth.ClassAttack, expect: []string{"login_storm"}, duration: 5 * time.Minute, count: 1,
			note: "three common passwords tried across many users in slow rounds from residential proxies", start: startSpraying},
		{name: "brute_force", class: truth.ClassAttack, expect: []string{"login_storm"}, duration: 90 * time.Second, count: 1,
			note: "one account, hundreds of sources, a few tries each", start: startBruteForce},
		{name: "revocation_not_enforced", class: truth.ClassAttack, expect: []string{"use_after_revocation"}, duration: 45 * time.Second, count: 2, perVictim: true,
			minRun: 8 * time.Second, // past the 5 s propagation grace, whatever the slot
			note:   "an admin revoked the session but the service keeps accepting it", start: startNotEnforced},
		{name: "reconnect_storm", wide: true, class: truth.ClassOperations, expect: []string{"login_storm"}, duration: 90 * time.Second, count: 1,
			note: "the session store fails, loses half the live sessions, and their clients log in again at once", start: startReconnect},
		{name: "key_rotation_churn", wide: true, class: truth.ClassOperations, expect: []string{"session_churn"}, duration: 60 * time.Second, count: 1,
			note: "a bad signing-key rotation invalidates 40% of live sessions within seconds", start: startKeyRotation},
		{name: "multi_tab_refresh", class: truth.ClassBenign, duration: 60 * time.Second, count: 20,
			note: "the same refresh token exchanged twice within milliseconds by two tabs of one browser", start: startMultiTab},
		{name: "mobile_retry", class: truth.ClassBenign, duration: 60 * time.Second, count: 20,
			note: "a phone lost the refresh response and retried the same token from the same network", start: startMobileRetry},
		{name: "corporate_nat", class: truth.ClassBenign, duration: 3 * time.Minute, count: 2000,
			note: "thousands of employees log in through one NAT address", start: startCorporateNAT},
		{name: "flash_sale", wide: true, class: truth.ClassBenign, duration: 4 * time.Minute, count: 1,
			note: "a legitimate login surge that builds over minutes from users' own devices", start: startFlashSale},
		{name: "monday_morning", wide: true, class: truth.ClassBenign, duration: 4 * time.Minute, count: 1,
			note: "the weekly Monday-morning login wave after weekend expiries, with more forgotten passwords", start: startMonday},
	} {
		scenarioByName[d.name] = d
	}
}

// instance is one running scenario instance and its ground truth.
type instance struct {
	def      *scenarioDef
	rec      truth.Scenario
	seen     map[string]bool // subject ids already recorded
	next     stepFunc
	until    int64 // event time it must end by
	count    int
	finished bool
	closing  bool
	marked   bool // markFirst has marked an event

	// scratch state of the running scenario
	victim   int32
	victimID string // the victim's session id: its slot may later hold another session
	attacker client
	pool     []client
	users    []int32
	devs     []int32
	parent   string
	i        int
	t0       int64
	tenantK  int // users i with i % Tenants == tenantK; -1: any
}

// allows reports whether user u belongs to the instance's tenant.
func (in *instance) allows(s *Simulator, u int32) bool {
	return in.tenantK < 0 || int(u)%s.cfg.Tenants == in.tenantK
}

// randomUser returns a random user of the instance's tenant.
func (s *Simulator) randomUser(in *instance) int32 {
	if in.tenantK < 0 {
		return int32(s.rng.IntN(len(s.users)))
	}
	t := s.cfg.Tenants
	return int32(in.tenantK + t*s.rng.IntN((len(s.users)-in.tenantK+t-1)/t))
}

// distinctUsers returns up to n distinct random users of the instance's
// tenant for which keep (nil: any) holds.
func (s *Simulator) distinctUsers(in *instance, n int, keep func(u *user) bool) []int32 {
	pool := len(s.users)
	if in.tenantK >= 0 {
		pool = (len(s.users) - in.tenantK + s.cfg.Tenants - 1) / s.cfg.Tenants
	}
	n = min(n, pool)
	seen := make(map[int32]bool, n)
	out := make([]int32, 0, n)
	for tries := 0; len(out) < n && tries < 50*n; tries++ {
		if u := s.randomUser(in); !seen[u] && (keep == nil || keep(&s.users[u])) {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// markFirst makes the event just emitted the instance's first offending
// one (for benign look-alikes: where a detector would be tempted), if none
// was yet.
func (in *instance) markFirst(s *Simulator) {
	if !in.marked && len(s.pending) > 0 && s.pending[len(s.pending)-1].inst == in {
		s.pending[len(s.pending)-1].offending = true
		in.marked = true
	}
}

// startScenario creates the instances of Config.Scenarios[i] at s.now.
func (s *Simulator) startScenario(i int) {
	sp := s.cfg.Scenarios[i]
	def := scenarioByName[sp.Name]
	dur := sp.Duration
	if dur == 0 {
		dur = def.duration
	}
	count := sp.Count
	if count == 0 {
		count = def.count
	}
	n, per := 1, count
	if def.perVictim {
		n, per = count, 1
	}
	for k := range n {
		in := &instance{def: def, seen: map[string]bool{}, count: per, victim: -1, tenantK: -1}
		in.rec = truth.Scenario{
			Scenario: def.name, Class: def.class, Expect: def.expect, Note: def.note,
			Instance: fmt.Sprintf("%s#%d", def.name, s.instanceSeq(def.name)),
		}
		if !def.wide && s.cfg.Tenants > 1 {
			// An instance stays inside one tenant, as an attack on one
			// customer's login page or one company's NAT does.
			in.tenantK = s.rng.IntN(s.cfg.Tenants)
			in.rec.Tenant = s.users[in.tenantK].tenant
		}
		at := s.now + int64(k)*int64(1500*time.Millisecond)
		// Staggered starts, one end (Spread relies on a scenario ending when
		// its slot does), unless that leaves an instance under half its time.
		in.until = max(s.now+int64(dur), at+int64(dur)/2, at+int64(def.minRun))
		if s.end > 0 {
			in.until = min(in.until, s.end-int64(time.Second))
		}
		in.rec.Start = time.Unix(0, at).UTC()
		in.next = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
			return def.start(s, in), 0
		}
		s.instances = append(s.instances, in)
		s.at(at, item{kind: itActor, inst: in})
	}
}

func (s *Simulator) instanceSeq(name string) int {
	n := 0
	for _, in := range s.instances {
		if in.def.name == name {
			n++
		}
	}
	return n + 1
}

// step runs the instance's next step and schedules the one after.
func (in *instance) step(s *Simulator) {
	if in.finished {
		return
	}
	if in.closing {
		in.finish(s)
		return
	}
	next, wait := in.next(s, in)
	if next == nil {
		in.closing = true // finish after this step's events are out
		s.at(s.now+1, item{kind: itActor, inst: in})
		return
	}
	in.next = next
	s.at(s.now+int64(max(wait, 0)), item{kind: itActor, inst: in})
}

// observe is called for each of the instance's events as it is handed out.
func (in *instance) observe(s *Simulator, e *schemas.Event, offending bool) {
	in.rec.Events++
	if e.Time.After(in.rec.End) {
		in.rec.End = e.Time
	}
	if offending && in.rec.FirstOffending.IsZero() {
		in.rec.FirstOffending = e.Time
		s.unstamped = append(s.unstamped, in)
	}
}

// finish releases the instance's sessions and reports its truth.
func (in *instance) finish(s *Simulator) {
	if in.finished {
		return
	}
	in.finished = true
	if x := in.victim; x >= 0 {
		s.release(x, in)
	}
	if in.rec.End.IsZero() {
		in.rec.End = time.Unix(0, s.now).UTC()
	}
	if in.rec.FirstOffending.IsZero() {
		in.rec.Skipped = true
		in.rec.Note += " (skipped: its offending event never happened)"
	}
	if s.onTruth != nil {
		s.onTruth(in.rec)
	}
}

func (in *instance) addUser(id string) { in.add(&in.rec.UserIDs, "u:", id) }
func (in *instance) addIP(ip string)   { in.add(&in.rec.IPs, "i:", ip) }
func (in *instance) addSession(s *Simulator, x int32) {
	ss := &s.sessions[x]
	in.add(&in.rec.SessionIDs, "s:", ss.id)
	in.add(&in.rec.FamilyIDs, "f:", ss.family)
	in.addUser(s.users[ss.user].id)
}

func (in *instance) add(list *[]string, kind, id string) {
	if id == "" || in.seen[kind+id] {
		return
	}
	in.seen[kind+id] = true
	*list = append(*list, id)
}

// setVictim makes session x the instance's victim.
func (in *instance) setVictim(s *Simulator, x int32) {
	in.victim, in.victimID = x, s.sessions[x].id
}

// lost reports whether the victim's slot x no longer holds the victim's
// session (it ended and the slot was reused, e.g. by the owner logging in
// again after a revocation): the attacker's stolen credentials are for the
// old session only.
func (in *instance) lost(s *Simulator, x int32) bool { return s.sessions[x].id != in.victimID }

// over reports whether the instance has reached its end time.
func (in *instance) over(s *Simulator) bool { return s.now >= in.until }

// ---- victims and attackers ----

// takeVictim finds a session in use, not driven by another scenario, with at
// least minGen refreshes behind it (refreshing it now if needed), and hands
// it to in: background traffic leaves it alone until release.
func (s *Simulator) takeVictim(in *instance, minGen int32, mobile bool) int32 {
	x := int32(-1)
	for range 200 {
		if len(s.inUse) == 0 {
			break
		}
		c := s.inUse[s.rng.IntN(len(s.inUse))]
		ss := &s.sessions[c]
		if ss.owner == nil && !ss.revoked && !ss.ignoreRev && (!mobile || s.devices[ss.dev].mobile) && in.allows(s, ss.user) {
			x = c
			break
		}
	}
	if x < 0 {
		for range 1000 {
			d := int32(s.rng.IntN(len(s.devices)))
			if s.devices[d].sess < 0 && (!mobile || s.devices[d].mobile) && in.allows(s, s.devices[d].user) {
				x = s.createSession(d, nil) // no typo: the scenario needs it now
				break
			}
		}
	}
	if x < 0 {
		return -1
	}
	ss := &s.sessions[x]
	ss.owner = in
	ss.ver++ // cancel its burst end; its refreshes are rescheduled below
	s.at(s.now+int64(s.cfg.RefreshInterval), item{kind: itRefresh, idx: x, ver: uint64(ss.ver)})
	// Exchange its token until it has minGen generations, and at least once
	// when minGen > 0 so that the exchanged tokens are in the stream (a warm
	// session's earlier ones are not). Refreshes fail during an outage:
	// give up after minGen+1 tries rather than loop forever.
	for try := int32(0); try <= minGen && (ss.gen < minGen || try == 0 && minGen > 0); try++ {
		s.refresh(x, in)
	}
	return x
}

// release gives a victim session back to normal traffic.
func (s *Simulator) release(x int32, in *instance) {
	ss := &s.sessions[x]
	if ss.owner != in {
		return
	}
	ss.owner = nil
	if !ss.live {
		return
	}
	if ss.revoked && !ss.ignoreRev {
		s.validate(x, nil) // the owner notices, and logs in again
		return
	}
	if ss.inUsePos >= 0 {
		s.at(s.now+s.expDur(meanBurst), item{kind: itBurstEnd, idx: x, ver: uint64(ss.ver)})
	}
}

// newAttacker returns a client on a hosting network or abroad.
func (s *Simulator) newAttacker(home int32) client {
	var n network
	if s.rng.IntN(2) == 0 {
		n = hostingNet(s.rng)
		for n.country == countries[home].code {
			n = hostingNet(s.rng)
		}
	} else {
		n = foreignNet(s.rng, home)
	}
	ua := toolUAs[s.rng.IntN(len(toolUAs))]
	if s.rng.IntN(2) == 0 {
		ua = desktopUAs[s.rng.IntN(len(desktopUAs))]
	}
	return client{network: n, ua: ua}
}

// attackerEvent is an event on session x as seen from the attacker's client.
func (s *Simulator) attackerEvent(t schemas.Type, x int32, in *instance) schemas.Event {
	e := s.base(t)
	s.onSession(&e, x)
	asClient(&e, in.attacker)
	return e
}

// ---- attacks ----

// startTheft: the attacker got hold of the victim's previous refresh token
// (already exchanged), redeems it from its own client (the service, which
// does not detect reuse, issues a forked token), uses the session, later
// tries an even older generation (now the service notices: reused), and
// keeps going until the family is revoked.
func startTheft(s *Simulator, in *instance) stepFunc {
	x := s.takeVictim(in, 4, false)
	if x < 0 {
		in.rec.Note += " (no session to steal)"
		return nil
	}
	in.setVictim(s, x)
	if s.sessions[x].gen < 2 { // refreshes fail during an outage: nothing to steal yet
		in.rec.Note += " (the victim could not refresh its token)"
		return nil
	}
	in.attacker = s.newAttacker(s.users[s.sessions[x].user].country)
	in.addSession(s, x)
	in.addIP(in.attacker.ip)
	var attack, replayOld stepFunc
	forkGen := int32(0)
	use := func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.over(s) || in.lost(s, x) {
			return nil, 0
		}
		ss := &s.sessions[x]
		if !ss.live || ss.revoked {
			e := s.attackerEvent(schemas.TypeTokenRefreshFailed, x, in)
			e.TokenID, e.Reason = tokenID(ss.famHash^0xa77ac, forkGen), "revoked"
			e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
			s.emit(e, in, false)
			return nil, 0
		}
		in.i++
		switch {
		case in.i == 6:
			return replayOld, 0
		case in.i%5 == 0:
			e := s.attackerEvent(schemas.TypeTokenRefreshed, x, in)
			e.ParentTokenID = tokenID(ss.famHash^0xa77ac, forkGen)
			forkGen++
			e.TokenID = tokenID(ss.famHash^0xa77ac, forkGen)
			e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
			s.emit(e, in, false)
		case in.i%3 == 0:
			s.validate(x, in) // the owner, still using it
		default:
			e := s.attackerEvent(schemas.TypeSessionValidated, x, in)
			e.Outcome, e.HasLatency, e.LatencyMS = schemas.OutcomeSuccess, true, latency(s.rng, medianValidMS, s.slow)
			s.emit(e, in, false)
		}
		return attack, time.Duration(700+s.rng.IntN(1600)) * time.Millisecond
	}
	attack = use
	replayOld = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.lost(s, x) {
			return nil, 0
		}
		ss := &s.sessions[x]
		if !ss.live || ss.revoked {
			return use(s, in)
		}
		e := s.attackerEvent(schemas.TypeTokenRefreshFailed, x, in)
		e.TokenID, e.Reason = tokenID(ss.famHash, max(ss.gen-3, 0)), "reused"
		e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
		s.emit(e, in, true)
		return attack, time.Duration(500+s.rng.IntN(1000)) * time.Millisecond
	}
	replay := func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		ss := &s.sessions[x]
		if !ss.live || in.over(s) || in.lost(s, x) {
			return nil, 0
		}
		e := s.attackerEvent(schemas.TypeTokenRefreshed, x, in)
		e.ParentTokenID = tokenID(ss.famHash, ss.gen-1)
		e.TokenID = tokenID(ss.famHash^0xa77ac, 0)
		e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
		if ss.revoked {
			e.Type, e.ParentTokenID, e.TokenID, e.Reason = schemas.TypeTokenRefreshFailed, "", e.ParentTokenID, "revoked"
		}
		s.emit(e, in, true)
		return attack, time.Duration(400+s.rng.IntN(800)) * time.Millisecond
	}
	return func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		return replay, time.Duration(1000+s.rng.IntN(2000)) * time.Millisecond
	}
}

// startHijack: while the owner keeps validating, a client in another
// country on another ASN validates the same session.
func startHijack(s *Simulator, in *instance) stepFunc {
	x := s.takeVictim(in, 0, false)
	if x < 0 {
		in.rec.Note += " (no session to hijack)"
		return nil
	}
	in.setVictim(s, x)
	home := s.users[s.sessions[x].user].country
	n := foreignNet(s.rng, home)
	in.attacker = client{network: n, ua: desktopUAs[s.rng.IntN(len(desktopUAs))]}
	for in.attacker.ua == s.devices[s.sessions[x].dev].ua {
		in.attacker.ua = desktopUAs[s.rng.IntN(len(desktopUAs))]
	}
	in.attacker.device = hexID("dev_", s.cfg.Seed^0x41ac, uint64(x))
	in.addSession(s, x)
	in.addIP(in.attacker.ip)
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		ss := &s.sessions[x]
		if in.over(s) || !ss.live || in.lost(s, x) {
			return nil, 0
		}
		in.i++
		if in.i%2 == 1 {
			e := s.attackerEvent(schemas.TypeSessionValidated, x, in)
			e.Outcome, e.HasLatency, e.LatencyMS = schemas.OutcomeSuccess, true, latency(s.rng, medianValidMS, s.slow)
			if ss.revoked {
				e.Outcome, e.Reason = schemas.OutcomeFailure, "revoked"
				s.emit(e, in, false)
				return nil, 0
			}
			s.emit(e, in, true)
		} else {
			s.validate(x, in)
		}
		return loop, time.Duration(300+s.rng.IntN(900)) * time.Millisecond
	}
	return loop
}

// startNotEnforced: an admin revokes the session (session.revoked), and the
// service, broken, keeps validating it; any later revocation is accepted and
// ignored too. The first validation past the 5 s propagation grace is the
// offending event.
func startNotEnforced(s *Simulator, in *instance) stepFunc {
	x := s.takeVictim(in, 0, false)
	if x < 0 {
		in.rec.Note += " (no session)"
		return nil
	}
	in.setVictim(s, x)
	in.addSession(s, x)
	ss := &s.sessions[x]
	ss.ignoreRev = true
	s.rv.mu.Lock()
	s.rv.ignore[x] = ss.user
	s.rv.revoked["s:"+ss.id] = true
	s.rv.revoked["f:"+ss.family] = true
	s.rv.mu.Unlock()
	e := s.base(schemas.TypeSessionRevoked)
	s.onSession(&e, x)
	e.Actor, e.Reason = schemas.ActorAdmin, "privilege_change"
	e.IP, e.ASN, e.Country, e.UserAgent, e.DeviceID = "", 0, "", "", ""
	s.emit(e, in, false)
	in.t0 = s.now
	const grace = 5 * time.Second
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.over(s) {
			s.rv.mu.Lock()
			delete(s.rv.ignore, x)
			s.rv.mu.Unlock()
			ss := &s.sessions[x]
			ss.ignoreRev = false
			if ss.live {
				s.end1(x, schemas.TypeSessionExpired, "revoked") // fixed at last
			}
			return nil, 0
		}
		e := s.base(schemas.TypeSessionValidated)
		s.onSession(&e, x)
		e.Outcome, e.HasLatency, e.LatencyMS = schemas.OutcomeSuccess, true, latency(s.rng, medianValidMS, s.slow)
		s.sessions[x].lastSeen = s.now
		s.emit(e, in, s.now-in.t0 > int64(grace))
		return loop, time.Duration(500+s.rng.IntN(1000)) * time.Millisecond
	}
	return func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		return loop, time.Duration(200+s.rng.IntN(500)) * time.Millisecond
	}
}

// loginAttempt emits one attacker login attempt against user u (-1: a user
// name that does not exist) from c; success creates a session on the
// attacker's client.
func (s *Simulator) loginAttempt(in *instance, u int32, c client, success bool, offending bool) {
	e := s.base(schemas.TypeLoginFailed)
	e.IP, e.ASN, e.Country, e.UserAgent = c.ip, c.asn, c.country, c.ua
	in.addIP(c.ip) // only the sources that did attack, not the whole pool
	e.AuthMethod, e.HasLatency, e.LatencyMS = "password", true, latency(s.rng, medianLoginMS, s.slow)
	if u < 0 {
		e.Tenant, e.Outcome, e.Reason = in.rec.Tenant, schemas.OutcomeFailure, "unknown_user"
		s.emit(e, in, offending)
		s.stats.loginFailed.Add(1)
		return
	}
	uu := &s.users[u]
	e.UserID, e.Tenant = uu.id, uu.tenant
	if !success {
		e.Outcome, e.Reason = schemas.OutcomeFailure, "bad_password"
		s.emit(e, in, offending)
		s.stats.loginFailed.Add(1)
		return
	}
	// The password worked: an account takeover on a device of the attacker's.
	d := int32(len(s.devices))
	s.devices = append(s.devices, device{user: u, id: hexID("dev_", s.cfg.Seed^0x5ff, uint64(d)), ua: c.ua, home: c.network, sess: -1, pendLogin: true})
	x := s.newSession(d, s.now)
	e.Type, e.Outcome, e.Reason = schemas.TypeSessionCreated, schemas.OutcomeSuccess, ""
	e.SessionID, e.FamilyID, e.DeviceID, e.TokenID = s.sessions[x].id, s.sessions[x].family, s.devices[d].id, tokenID(s.sessions[x].famHash, 0)
	s.emit(e, in, offending)
	s.stats.logins.Add(1)
	s.use(x)
	in.addSession(s, x)
}

// residentialPool returns n attacker clients on distinct residential
// addresses around the world (proxies, a botnet).
func (s *Simulator) residentialPool(n int) []client {
	out := make([]client, 0, n)
	seen := map[string]bool{}
	for len(out) < n {
		c := pickCountry(s.rng)
		nw := residential(s.rng, &countries[c], s.rng.IntN(2) == 0)
		if seen[nw.ip] {
			continue
		}
		seen[nw.ip] = true
		out = append(out, client{network: nw, ua: toolUAs[s.rng.IntN(len(toolUAs))]})
	}
	return out
}

// startStuffing: a leaked credential list tried from a few hosting IPs.
func startStuffing(s *Simulator, in *instance) stepFunc {
	// One hosting provider, a handful of addresses.
	h := hosting[s.rng.IntN(len(hosting))]
	n := 8 + s.rng.IntN(9)
	for i := range n {
		ip := netip.AddrFrom4([4]byte{h.v4[0], h.v4[1], byte(10 + i/4), byte(10 + s.rng.IntN(240))})
		in.pool = append(in.pool, client{network: network{ip: ip.String(), asn: h.asn, country: h.country}, ua: toolUAs[s.rng.IntN(2)]})
	}
	rate := math.Min(math.Max(s.cfg.Rate*0.03, 5), 600) // attempts per second
	var loop stepFunc
	second := int32(-1)
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.over(s) {
			return nil, 0
		}
		c := in.pool[s.rng.IntN(len(in.pool))]
		u := second
		second = -1
		if u < 0 {
			u = s.randomUser(in)
			if s.rng.IntN(10) < 3 {
				u = -1 // not a user here
			} else if s.rng.IntN(3) == 0 {
				second = u // a second password for the same user next
			}
		}
		s.loginAttempt(in, u, c, u >= 0 && s.rng.IntN(150) == 0, true)
		return loop, time.Duration(s.rng.ExpFloat64() / rate * 1e9)
	}
	return loop
}

// startSpraying: three passwords, each tried once against many users per
// round, rounds spread over the scenario, from residential proxies.
func startSpraying(s *Simulator, in *instance) stepFunc {
	in.pool = s.residentialPool(30)
	perRound := min(len(s.users)/2, 400)
	const rounds = 3
	span := time.Duration(in.until - s.now)
	gap := max(span/time.Duration(rounds*perRound+1), 1)
	targets := s.distinctUsers(in, perRound, nil)
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.over(s) || in.i >= rounds*len(targets) {
			return nil, 0
		}
		u := targets[in.i%len(targets)]
		in.i++
		s.loginAttempt(in, u, in.pool[s.rng.IntN(len(in.pool))], s.rng.IntN(500) == 0, true)
		return loop, gap/2 + time.Duration(s.rng.Int64N(int64(gap)))
	}
	return loop
}

// startBruteForce: one account, hundreds of sources.
func startBruteForce(s *Simulator, in *instance) stepFunc {
	u := s.randomUser(in)
	in.addUser(s.users[u].id)
	in.pool = s.residentialPool(150 + s.rng.IntN(150))
	span := time.Duration(in.until - s.now)
	tries := len(in.pool) * 2
	gap := max(span/time.Duration(tries+1), 1)
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.over(s) || in.i >= tries {
			return nil, 0
		}
		c := in.pool[in.i/2]
		in.i++
		s.loginAttempt(in, u, c, false, true)
		return loop, gap/2 + time.Duration(s.rng.Int64N(int64(gap)))
	}
	return loop
}

// ---- operations ----

// relogin brings the devices in in.devs back, a surge decaying over span.
func relogin(span time.Duration) stepFunc {
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.i >= len(in.devs) || in.over(s) {
			for _, d := range in.devs[min(in.i, len(in.devs)):] {
				s.devices[d].pendLogin = false
			}
			return nil, 0
		}
		d := in.devs[in.i]
		in.i++
		dv := &s.devices[d]
		dv.pendLogin = false
		if dv.sess < 0 {
			s.login(d, in, loginStyle{pastOutage: true})
			in.markFirst(s)
		}
		// Most come back at once, the rest trail off.
		left := float64(len(in.devs) - in.i + 1)
		return loop, time.Duration(s.rng.ExpFloat64() * float64(span) / (left * 4))
	}
	return loop
}

// dropSessions ends share of the sessions in use (not scenario-owned) with
// session.expired reason, and queues their devices for in's re-login surge.
func (s *Simulator) dropSessions(in *instance, share float64, reason string, offending bool) {
	var victims []int32
	for _, x := range s.inUse {
		if s.sessions[x].owner == nil && s.rng.Float64() < share {
			victims = append(victims, x)
		}
	}
	for _, x := range victims {
		d := s.sessions[x].dev
		e := s.base(schemas.TypeSessionExpired)
		s.onSession(&e, x)
		e.Reason = reason
		s.emit(e, in, offending)
		s.endSession(x, 0)
		if !s.devices[d].pendLogin {
			s.devices[d].pendLogin = true
			in.devs = append(in.devs, d)
		}
	}
}

// startReconnect: the session store goes down (validations and refreshes
// fail, logins fail, latency soars), comes back having lost half the live
// sessions, and their clients log in again at once.
func startReconnect(s *Simulator, in *instance) stepFunc {
	span := time.Duration(in.until - s.now)
	outage := span / 3
	s.outageUntil = s.now + int64(outage)
	s.slow = 8
	return func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		return func(s *Simulator, in *instance) (stepFunc, time.Duration) {
			s.slow = 1
			s.dropSessions(in, 0.5, "invalid", false)
			s.rng.Shuffle(len(in.devs), func(i, j int) { in.devs[i], in.devs[j] = in.devs[j], in.devs[i] })
			return relogin(span - outage), 0
		}, outage
	}
}

// startKeyRotation: a bad signing-key rotation: 40% of live sessions fail
// validation with reason invalid and expire within seconds; clients log in
// again.
func startKeyRotation(s *Simulator, in *instance) stepFunc {
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		in.i++
		s.dropSessions(in, 0.1, "invalid", true) // 10% a second for 5 s ≈ 40%
		if in.i < 5 {
			return loop, time.Second
		}
		in.i = 0
		return relogin(time.Duration(in.until-s.now) / 2), time.Second
	}
	return loop
}

// ---- benign look-alikes ----

// doubleRefresh exchanges a session's token and exchanges the same parent
// again after delay from the same client (two tabs; a lost response).
func doubleRefresh(mobile bool, delay func(s *Simulator) time.Duration) func(s *Simulator, in *instance) stepFunc {
	return func(s *Simulator, in *instance) stepFunc {
		cycle := time.Duration(in.until-s.now) / time.Duration(in.count+1)
		var first, second stepFunc
		x := int32(-1)
		var d time.Duration
		first = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
			if in.i >= in.count || in.over(s) {
				return nil, 0
			}
			in.i++
			x = s.takeVictim(in, 0, mobile)
			if x < 0 {
				return first, cycle
			}
			in.addSession(s, x)
			in.addIP(s.devices[s.sessions[x].dev].net().ip)
			ss := &s.sessions[x]
			in.parent = tokenID(ss.famHash, ss.gen)
			s.refresh(x, in)
			d = delay(s)
			return second, d
		}
		second = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
			ss := &s.sessions[x]
			if ss.live && !ss.revoked {
				e := s.base(schemas.TypeTokenRefreshed)
				s.onSession(&e, x)
				e.ParentTokenID, e.TokenID = in.parent, tokenID(ss.famHash^0x7ab, ss.gen)
				e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
				s.emit(e, in, true)
			}
			s.release(x, in)
			return first, max(cycle-d, 0)
		}
		return first
	}
}

var (
	startMultiTab = doubleRefresh(false, func(s *Simulator) time.Duration {
		return time.Duration(1+s.rng.IntN(30)) * time.Millisecond
	})
	startMobileRetry = doubleRefresh(true, func(s *Simulator) time.Duration {
		return time.Duration(300+s.rng.IntN(2200)) * time.Millisecond
	})
)

// startCorporateNAT: count employees log in from office desktops behind one
// address over the scenario, then work normally.
func startCorporateNAT(s *Simulator, in *instance) stepFunc {
	nat := client{network: network{ip: "12.153.224.10", asn: 7018, country: "US"}}
	in.addIP(nat.ip)
	// Employees of a US office: users who live there.
	in.users = s.distinctUsers(in, in.count, func(u *user) bool { return countries[u.country].code == nat.country })
	span := time.Duration(in.until - s.now)
	var loop stepFunc
	loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
		if in.i >= len(in.users) || in.over(s) {
			return nil, 0
		}
		u := in.users[in.i]
		in.i++
		d := int32(len(s.devices))
		s.devices = append(s.devices, device{user: u, id: hexID("dev_", s.cfg.Seed^0xc0, uint64(d)),
			ua: desktopUAs[s.rng.IntN(len(desktopUAs))], home: nat.network, sess: -1})
		s.login(d, in, loginStyle{})
		if n := len(s.pending); n > 0 && s.pending[n-1].ev.UserID != "" {
			in.addUser(s.users[u].id) // even if this login failed and a later retry succeeds
		}
		in.markFirst(s)
		if x := s.devices[d].sess; x >= 0 {
			in.addSession(s, x)
		}
		// Office arrival: most in the middle of the window.
		mid := float64(len(in.users)) / 2
		w := 0.3 + math.Abs(float64(in.i)-mid)/mid
		return loop, time.Duration(w * float64(span) / float64(len(in.users)))
	}
	return loop
}

// loginRate is the normal rate of logins per second: observed so far, or,
// early in a run, what the model gives (devices without a session come
// back after meanRelogin on average).
func (s *Simulator) loginRate() float64 {
	if el := float64(s.now-s.start) / 1e9; el >= 10 && s.stats.logins.Load() >= 20 {
		return float64(s.stats.logins.Load()) / el
	}
	return max(float64(len(s.devices))*(1-activeShare)/meanRelogin.Seconds(), 0.1)
}

// surge logs in random devices at a rate that ramps up to peak × the normal
// login rate over rise, then holds and ebbs.
func surge(peak float64, rise float64, typo float64) func(s *Simulator, in *instance) stepFunc {
	return func(s *Simulator, in *instance) stepFunc {
		in.t0 = s.now
		span := float64(in.until - s.now)
		base := s.loginRate()
		var loop stepFunc
		loop = func(s *Simulator, in *instance) (stepFunc, time.Duration) {
			if in.over(s) {
				return nil, 0
			}
			f := float64(s.now-in.t0) / span
			shape := math.Min(f/rise, 1)
			if f > 0.8 {
				shape *= (1 - f) / 0.2
			}
			rate := base * (0.05 + peak*shape)
			for range 4 {
				d := int32(s.rng.IntN(len(s.devices)))
				if s.devices[d].sess < 0 {
					s.login(d, in, loginStyle{typos: typo})
					in.markFirst(s)
					break
				}
			}
			return loop, time.Duration(s.rng.ExpFloat64()/rate*1e9) + 1
		}
		return loop
	}
}

var (
	startFlashSale = surge(4, 0.6, 1)
	startMonday    = surge(3, 0.3, 3)
)
