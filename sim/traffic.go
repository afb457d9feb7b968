package sim

import (
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// Behaviour of normal users (event-time means).
const (
	meanBurst     = 8 * time.Minute  // a client stays in use this long
	meanIdle      = 25 * time.Minute // then puts the session down this long
	meanRelogin   = 20 * time.Minute // a device without a session logs in again after
	activeShare   = 0.6              // devices with a session at the start
	inUseShare    = 0.5              // of those, in use at the start
	medianValidMS = 2.0
	medianRefrMS  = 12.0
	medianLoginMS = 140.0
)

// warmStart gives devices the sessions they would have had before the run
// began (no session.created is emitted for them), so traffic starts at its
// steady state instead of a login storm.
func (s *Simulator) warmStart() {
	r := s.rng
	for d := range s.devices {
		if r.Float64() >= activeShare {
			s.at(s.now+s.expDur(meanRelogin), item{kind: itLogin, idx: int32(d)})
			s.devices[d].pendLogin = true
			continue
		}
		age := int64(r.Float64() * float64(s.cfg.AbsoluteLifetime) * 0.9)
		x := s.newSession(int32(d), s.now-age)
		ss := &s.sessions[x]
		ss.gen = int32(age / int64(s.cfg.RefreshInterval))
		if r.Float64() < inUseShare {
			ss.lastSeen = s.now
			ss.lastRefr = s.now - int64(r.Float64()*float64(s.cfg.RefreshInterval))
			s.use(x)
		} else {
			ss.lastSeen = s.now - int64(r.Float64()*float64(s.cfg.IdleTimeout))
			ss.lastRefr = ss.lastSeen
			s.putDown(x)
		}
	}
}

func (s *Simulator) expDur(mean time.Duration) int64 {
	return int64(s.rng.ExpFloat64()*float64(mean)) + 1
}

// newSession allocates a live session for device d created at t.
func (s *Simulator) newSession(d int32, t int64) int32 {
	var x int32
	if n := len(s.free); n > 0 {
		x = s.free[n-1]
		s.free = s.free[:n-1]
	} else {
		s.sessions = append(s.sessions, session{})
		x = int32(len(s.sessions) - 1)
	}
	s.serials++
	s.stats.live.Add(1)
	ss := &s.sessions[x]
	ver := ss.ver + 1
	*ss = session{
		id:     hexID("ses_", s.cfg.Seed, s.serials),
		family: hexID("fam_", s.cfg.Seed, s.serials),
		user:   s.devices[d].user, dev: d, serial: s.serials, lastSeen: t, lastRefr: t,
		inUsePos: -1, ver: ver, live: true,
	}
	ss.famHash = mix64(s.cfg.Seed ^ s.serials)
	s.devices[d].sess = x
	s.at(t+int64(s.cfg.AbsoluteLifetime), item{kind: itAbsExpire, idx: x, ver: ss.serial})
	s.rv.mu.Lock()
	s.rv.sessions[ss.id] = x
	s.rv.families[ss.family] = x
	s.rv.mu.Unlock()
	return x
}

// endSession forgets session x; the device logs in again later unless
// relogin is 0.
func (s *Simulator) endSession(x int32, relogin time.Duration) {
	ss := &s.sessions[x]
	if !ss.live {
		return
	}
	if ss.inUsePos >= 0 {
		s.unuse(x)
	}
	ss.live = false
	ss.ver++
	d := &s.devices[ss.dev]
	if d.sess == x {
		d.sess = -1
		if relogin > 0 && !d.pendLogin {
			d.pendLogin = true
			s.at(s.now+s.expDur(relogin), item{kind: itLogin, idx: ss.dev})
		}
	}
	s.rv.mu.Lock()
	delete(s.rv.sessions, ss.id)
	delete(s.rv.families, ss.family)
	delete(s.rv.revoked, "s:"+ss.id)
	delete(s.rv.revoked, "f:"+ss.family)
	delete(s.rv.ignore, x)
	s.rv.mu.Unlock()
	s.free = append(s.free, x)
	s.stats.live.Add(-1)
}

// use puts session x in active use: it validates, refreshes on cadence, and
// is put down after a while.
func (s *Simulator) use(x int32) {
	ss := &s.sessions[x]
	ss.ver++
	ss.inUsePos = int32(len(s.inUse))
	s.inUse = append(s.inUse, x)
	d := &s.devices[ss.dev]
	if d.mobile {
		d.onCell = s.rng.IntN(3) == 0 // back home on wifi, or out on the carrier
	}
	next := ss.lastRefr + int64(s.cfg.RefreshInterval)
	if next < s.now {
		next = s.now + int64(s.rng.IntN(2000))*int64(time.Millisecond)
	}
	s.at(next, item{kind: itRefresh, idx: x, ver: uint64(ss.ver)})
	if ss.owner == nil {
		s.at(s.now+s.expDur(meanBurst), item{kind: itBurstEnd, idx: x, ver: uint64(ss.ver)})
	}
}

func (s *Simulator) unuse(x int32) {
	ss := &s.sessions[x]
	p := ss.inUsePos
	last := s.inUse[len(s.inUse)-1]
	s.inUse[p] = last
	s.sessions[last].inUsePos = p
	s.inUse = s.inUse[:len(s.inUse)-1]
	ss.inUsePos = -1
	ss.ver++
}

// putDown makes session x idle: it comes back later, or expires first.
func (s *Simulator) putDown(x int32) {
	ss := &s.sessions[x]
	if ss.inUsePos >= 0 {
		s.unuse(x)
	} else {
		ss.ver++
	}
	back := s.now + s.expDur(meanIdle)
	if idle := ss.lastSeen + int64(s.cfg.IdleTimeout); back >= idle {
		s.at(max(idle, s.now), item{kind: itIdleExpire, idx: x, ver: uint64(ss.ver)})
		return
	}
	s.at(back, item{kind: itResume, idx: x, ver: uint64(ss.ver)})
}

// handle runs a scheduled item at s.now.
func (s *Simulator) handle(it item) {
	switch it.kind {
	case itScenario:
		s.startScenario(it.spec)
		return
	case itActor:
		it.inst.step(s)
		return
	case itLogin:
		d := &s.devices[it.idx]
		d.pendLogin = false
		if d.sess < 0 {
			s.login(it.idx, nil, loginStyle{})
		}
		return
	}
	ss := &s.sessions[it.idx]
	if !ss.live {
		return
	}
	switch it.kind {
	case itAbsExpire:
		switch {
		case ss.serial != it.ver:
		case ss.owner != nil: // a scenario is using it: expire it a little later
			s.at(s.now+int64(time.Minute), it)
		default:
			s.end1(it.idx, schemas.TypeSessionExpired, "expired")
		}
		return
	}
	if uint64(ss.ver) != it.ver {
		return
	}
	switch it.kind {
	case itRefresh:
		s.refresh(it.idx, nil)
		if ss.live && ss.inUsePos >= 0 {
			s.at(s.now+int64(s.cfg.RefreshInterval), item{kind: itRefresh, idx: it.idx, ver: uint64(ss.ver)})
		}
	case itBurstEnd:
		s.burstEnd(it.idx)
	case itResume:
		s.use(it.idx)
		s.validate(it.idx, nil)
	case itIdleExpire:
		s.end1(it.idx, schemas.TypeSessionExpired, "idle_timeout")
	}
}

// end1 emits the end of session x (logout, expiry, revocation) and forgets it.
func (s *Simulator) end1(x int32, t schemas.Type, reason string) {
	e := s.base(t)
	s.onSession(&e, x)
	e.Reason = reason
	switch t {
	case schemas.TypeSessionRevoked:
		e.Actor = schemas.ActorAdmin
	case schemas.TypeSessionLogout:
		e.HasLatency, e.LatencyMS = true, latency(s.rng, 4, s.slow)
	}
	s.emit(e, s.sessions[x].owner, false)
	s.endSession(x, meanRelogin)
}

// background is one arrival of the steady user traffic.
func (s *Simulator) background() {
	r := s.rng
	if len(s.inUse) == 0 {
		s.randomLogin()
		return
	}
	x := s.inUse[r.IntN(len(s.inUse))]
	if s.sessions[x].owner != nil { // scenarios drive their own sessions
		return
	}
	if r.IntN(1000) < 5 && !s.sessions[x].revoked { // a revoked session cannot step up: it validates, and fails
		e := s.base(schemas.TypeSessionElevated)
		s.onSession(&e, x)
		e.AuthMethod, e.HasLatency, e.LatencyMS = "mfa", true, latency(r, 900, s.slow)
		e.Attributes = []schemas.Attribute{{Key: "scope", Value: "payments"}}
		s.emit(e, nil, false)
		return
	}
	s.validate(x, nil)
}

// burstEnd ends a spell of use: the user logs out, rarely an admin revokes
// the session, or it is put down to be resumed (or to expire) later.
func (s *Simulator) burstEnd(x int32) {
	if s.sessions[x].revoked { // the client's next call fails, and it gives up
		s.validate(x, nil)
		return
	}
	switch n := s.rng.IntN(1000); {
	case n < 150:
		s.end1(x, schemas.TypeSessionLogout, "logout")
	case n < 152:
		s.end1(x, schemas.TypeSessionRevoked, "privilege_change")
	case n < 160:
		// It comes back after its refresh token died: the refresh fails.
		ss := &s.sessions[x]
		e := s.base(schemas.TypeTokenRefreshFailed)
		s.onSession(&e, x)
		e.TokenID, e.Reason = tokenID(ss.famHash, ss.gen), "expired"
		e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
		s.emit(e, nil, false)
		s.endSession(x, time.Minute)
	default:
		s.putDown(x)
	}
}

// randomLogin starts a login on a random device that has no session.
func (s *Simulator) randomLogin() {
	for range 4 {
		d := int32(s.rng.IntN(len(s.devices)))
		if s.devices[d].sess < 0 {
			s.login(d, nil, loginStyle{})
			return
		}
	}
}

// loginStyle bends one login attempt away from the user's habits.
type loginStyle struct {
	pastOutage bool    // the store is back for this client even during an outage
	typos      float64 // multiplies the user's typo rate; 0 means 1
}

// login is one login attempt on device d: it fails now and then (a typo,
// an unknown user name, a failed second factor; the user tries again), else
// it creates a session that goes into use.
func (s *Simulator) login(d int32, inst *instance, style loginStyle) int32 {
	r := s.rng
	u := &s.users[s.devices[d].user]
	typo := u.typoRate
	if style.typos > 0 {
		typo *= style.typos
	}
	retry := func(reason string, wait time.Duration, noUser bool) int32 {
		e := s.base(schemas.TypeLoginFailed)
		s.onDevice(&e, d)
		if noUser {
			e.UserID = ""
		}
		e.Outcome, e.Reason, e.AuthMethod = schemas.OutcomeFailure, reason, "password"
		e.HasLatency, e.LatencyMS = true, latency(r, medianLoginMS, s.slow)
		s.emit(e, inst, false)
		s.stats.loginFailed.Add(1)
		if !s.devices[d].pendLogin {
			s.devices[d].pendLogin = true
			s.at(s.now+int64(wait)+s.expDur(wait), item{kind: itLogin, idx: d})
		}
		return -1
	}
	switch p := r.Float64(); {
	case p < typo:
		return retry("bad_password", 4*time.Second, false)
	case p < typo+0.004:
		return retry("unknown_user", 6*time.Second, true)
	case u.mfa && p < typo+0.004+0.02:
		return retry("mfa_failed", 15*time.Second, false)
	}
	if s.now < s.outageUntil && !style.pastOutage {
		return retry("store_unavailable", 10*time.Second, false)
	}
	return s.createSession(d, inst)
}

// createSession is a successful login on device d: session.created with
// the user's usual authentication method, and the session goes into use.
func (s *Simulator) createSession(d int32, inst *instance) int32 {
	r := s.rng
	u := &s.users[s.devices[d].user]
	x := s.newSession(d, s.now)
	e := s.base(schemas.TypeSessionCreated)
	s.onSession(&e, x)
	e.Outcome = schemas.OutcomeSuccess
	e.TokenID = tokenID(s.sessions[x].famHash, 0)
	switch m := r.IntN(10); {
	case m < 6:
		e.AuthMethod, e.HasLatency, e.LatencyMS = "password", true, latency(r, medianLoginMS, s.slow)
		if u.mfa {
			e.AuthMethod, e.LatencyMS = "mfa", e.LatencyMS+latency(r, 600, 1)
		}
	case m < 9:
		e.AuthMethod, e.HasLatency, e.LatencyMS = "sso", true, latency(r, 260, s.slow)
	default:
		e.AuthMethod, e.HasLatency, e.LatencyMS = "passkey", true, latency(r, 60, s.slow)
	}
	s.emit(e, inst, false)
	s.stats.logins.Add(1)
	s.use(x)
	return x
}

// validate emits a session.validated for session x from its own device:
// a failure during an outage or once the session is revoked (the client
// then drops it and logs in again).
func (s *Simulator) validate(x int32, inst *instance) {
	ss := &s.sessions[x]
	ss.lastSeen = s.now
	if ss.revoked {
		e := s.base(schemas.TypeSessionValidated)
		s.onSession(&e, x)
		e.Outcome, e.Reason, e.HasLatency, e.LatencyMS = schemas.OutcomeFailure, "revoked", true, latency(s.rng, medianValidMS, s.slow)
		s.emit(e, inst, false)
		s.endSession(x, 30*time.Second)
		return
	}
	// A scenario's validations are its evidence (the owner still using a
	// hijacked session): they are never sampled away, like its other events.
	rate := s.cfg.SampleRate
	if inst != nil {
		rate = 1
	}
	if rate > 1 && s.rng.IntN(rate) != 0 {
		return
	}
	e := s.base(schemas.TypeSessionValidated)
	s.onSession(&e, x)
	e.Outcome, e.HasLatency, e.LatencyMS = schemas.OutcomeSuccess, true, latency(s.rng, medianValidMS, s.slow)
	e.SampleRate = float64(rate)
	if s.now < s.outageUntil {
		e.Outcome, e.Reason, e.LatencyMS = schemas.OutcomeFailure, "store_unavailable", e.LatencyMS*25
	} else if s.rng.IntN(2000) == 0 {
		e.Outcome, e.Reason = schemas.OutcomeFailure, "internal_error"
	}
	s.emit(e, inst, false)
}

// refresh exchanges session x's current refresh token for the next
// generation, from its own device.
func (s *Simulator) refresh(x int32, inst *instance) {
	ss := &s.sessions[x]
	ss.lastSeen = s.now
	e := s.base(schemas.TypeTokenRefreshed)
	s.onSession(&e, x)
	e.HasLatency, e.LatencyMS = true, latency(s.rng, medianRefrMS, s.slow)
	if ss.revoked {
		e.Type, e.TokenID, e.Reason = schemas.TypeTokenRefreshFailed, tokenID(ss.famHash, ss.gen), "revoked"
		s.emit(e, inst, false)
		s.endSession(x, 30*time.Second)
		return
	}
	if s.now < s.outageUntil {
		e.Type, e.TokenID, e.Reason = schemas.TypeTokenRefreshFailed, tokenID(ss.famHash, ss.gen), "store_unavailable"
		e.LatencyMS *= 25
		s.emit(e, inst, false)
		return
	}
	e.ParentTokenID = tokenID(ss.famHash, ss.gen)
	ss.gen++
	ss.lastRefr = s.now
	e.TokenID = tokenID(ss.famHash, ss.gen)
	s.emit(e, inst, false)
}
