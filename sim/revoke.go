package sim

import (
	"time"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/sessionapi"
)

var _ sessionapi.Target = (*Simulator)(nil)

// Revoke is the session service's side of POST /revocations: it looks the
// subject up among live sessions (families, users) and queues the
// revocation for the event loop, which emits session.revoked (actor vigil)
// and makes every later use of the session fail with reason revoked —
// unless the session is under the revocation_not_enforced scenario. It is
// safe to call from any goroutine.
func (s *Simulator) Revoke(r sessionapi.Request, _ time.Time) (sessionapi.Outcome, bool) {
	s.rv.mu.Lock()
	defer s.rv.mu.Unlock()
	var key string
	var slots []int32
	enforced := true
	switch r.Scope {
	case sessionapi.ScopeSession:
		x, ok := s.rv.sessions[r.SessionID]
		if !ok {
			return sessionapi.NotFound, false
		}
		key, slots = "s:"+r.SessionID, []int32{x}
	case sessionapi.ScopeFamily:
		x, ok := s.rv.families[r.FamilyID]
		if !ok {
			return sessionapi.NotFound, false
		}
		key, slots = "f:"+r.FamilyID, []int32{x}
	case sessionapi.ScopeUser:
		u, ok := s.rv.users[r.UserID]
		if !ok {
			return sessionapi.NotFound, false
		}
		key = "u:" + r.UserID
		for _, owner := range s.rv.ignore {
			if owner == u { // one of its sessions will keep working
				enforced = false
			}
		}
	default:
		return sessionapi.NotFound, false
	}
	if s.rv.revoked[key] {
		return sessionapi.AlreadyRevoked, !s.ignoredLocked(slots)
	}
	if r.Scope != sessionapi.ScopeUser {
		s.rv.revoked[key] = true
		enforced = !s.ignoredLocked(slots)
	}
	s.rv.queue = append(s.rv.queue, r)
	s.rv.flag.Store(true)
	return sessionapi.Revoked, enforced
}

// userSessions returns the live sessions on user u's devices, including
// devices added by scenarios (found through the session table).
func (s *Simulator) userSessions(u int32) []int32 {
	var out []int32
	for x := range s.sessions {
		if ss := &s.sessions[x]; ss.live && ss.user == u {
			out = append(out, int32(x))
		}
	}
	return out
}

// ignoredLocked reports whether any of the slots ignores revocations.
func (s *Simulator) ignoredLocked(slots []int32) bool {
	for _, x := range slots {
		if _, ok := s.rv.ignore[x]; ok {
			return true
		}
	}
	return false
}

// applyRevocations runs on the event loop: each queued revocation ends the
// subject's sessions (they fail on their next use) and emits session.revoked
// with actor vigil.
func (s *Simulator) applyRevocations() {
	s.rv.mu.Lock()
	q := s.rv.queue
	s.rv.queue = nil
	s.rv.flag.Store(false)
	type target struct {
		x      int32
		reason string
	}
	var targets []target
	for _, r := range q {
		reason := r.Reason
		if reason == "" {
			reason = "vigil"
		}
		switch r.Scope {
		case sessionapi.ScopeSession:
			if x, ok := s.rv.sessions[r.SessionID]; ok {
				targets = append(targets, target{x, reason})
			}
		case sessionapi.ScopeFamily:
			if x, ok := s.rv.families[r.FamilyID]; ok {
				targets = append(targets, target{x, reason})
			}
		case sessionapi.ScopeUser:
			if u, ok := s.rv.users[r.UserID]; ok {
				for _, x := range s.userSessions(u) {
					targets = append(targets, target{x, reason})
				}
			}
		}
	}
	s.rv.mu.Unlock()
	for _, t := range targets {
		x, reason := t.x, t.reason
		ss := &s.sessions[x]
		if !ss.live || ss.revoked {
			continue
		}
		e := s.base(schemas.TypeSessionRevoked)
		s.onSession(&e, x)
		e.Actor, e.Reason = schemas.ActorVigil, reason
		s.emit(e, ss.owner, false)
		s.stats.revocations.Add(1)
		if ss.ignoreRev {
			continue
		}
		ss.revoked = true
		if ss.inUsePos < 0 && ss.owner == nil {
			// Nobody is using it: it is simply gone.
			s.endSession(x, meanRelogin)
		}
	}
}
