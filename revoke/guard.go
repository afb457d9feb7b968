package revoke

import (
	"net/netip"
	"sync"
	"time"

	"github.com/vigilhq/vigil/pseudonym"
)

// Verdict is the guardrails' decision on one intent.
type Verdict struct {
	// Send is true when the revocation may go to the session API.
	Send bool
	// Status is dry_run or suppressed when Send is false.
	Status Status
	// Guardrail names what suppressed it.
	Guardrail string
	// Tripped is true for the action that tripped the blast-radius cap.
	Tripped bool
	// Count is the number of revocations in the cap window, for the evidence.
	Count int
}

// Start is one revocation started (sent, or recorded dry_run): the unit the
// cool-down and the cap count.
type Start struct {
	// ActionID is the intent id.
	ActionID string
	// Subject is the intent's SubjectKey.
	Subject string
	// At is when it started.
	At time.Time
}

// Guard holds the guardrails' state: allowlists, per-subject cool-down,
// the blast-radius cap and its halt. It is safe for concurrent use;
// Judge is called in outbox order so that decisions on one subject are
// made in the order the intents were produced.
//
// Starts are kept per action id, so an action judged again (its partition
// moved, or the revoker restarted before it ended) continues under its
// first decision instead of being stopped by its own cool-down or counted
// twice against the cap.
type Guard struct {
	dryRun       bool
	users        map[string]bool
	tenants      map[string]bool
	nets         []netip.Prefix
	cooldown     time.Duration
	pseudonyms   pseudonym.Key // subjects are compared by pseudonym when enabled
	max          int
	window, halt time.Duration

	mu        sync.Mutex
	starts    map[string]Start // action id → its start, within max(cooldown, cap window)
	last      map[string]Start // subject key → its latest start
	haltUntil time.Time
	trippedAt time.Time
	tripID    string    // the action that tripped the cap, until its halt ends
	capFrom   time.Time // starts before an operator's resume do not count against the cap
}

// withPseudonyms makes g compare subjects by their pseudonyms under k.
func (g *Guard) withPseudonyms(k pseudonym.Key) *Guard {
	g.pseudonyms = k
	return g
}

// NewGuard returns the guardrails of c; c must be valid. dryRun forces
// dry-run on top of c.DryRun (no adapter configured).
func NewGuard(c Config, dryRun bool) *Guard {
	g := &Guard{
		dryRun: c.DryRun || dryRun, users: map[string]bool{}, tenants: map[string]bool{},
		cooldown: c.Cooldown, max: c.MaxActions, window: c.CapWindow, halt: c.HaltFor,
		starts: map[string]Start{}, last: map[string]Start{},
	}
	for _, u := range c.AllowUsers {
		g.users[u] = true
	}
	for _, t := range c.AllowTenants {
		g.tenants[t] = true
	}
	for _, s := range c.AllowCIDRs {
		if p, err := netip.ParsePrefix(s); err == nil {
			g.nets = append(g.nets, p.Masked())
		}
	}
	return g
}

// DryRun reports whether nothing is ever sent.
func (g *Guard) DryRun() bool { return g.dryRun }

// Resume adds what was loaded from the actions table (on taking over the
// outbox) to the cool-down, cap and halt state; starts already known by
// action id are not counted twice.
func (g *Guard) Resume(s Seed, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, st := range s.Starts {
		g.add(st)
	}
	if !s.TrippedAt.IsZero() && s.TrippedAt.Add(g.halt).After(g.haltUntil) {
		g.haltUntil, g.trippedAt, g.tripID = s.TrippedAt.Add(g.halt), s.TrippedAt, s.TripID
	}
	g.resumeLocked(s.ResumedAt)
	g.expire(now)
}

// ResumeAt applies an operator's resume made at t: a halt that tripped
// before t ends, and the cap counts only revocations started from t on
// (the cool-down still remembers the earlier ones).
func (g *Guard) ResumeAt(t time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.resumeLocked(t)
}

func (g *Guard) resumeLocked(t time.Time) bool {
	if t.IsZero() || t.Before(g.trippedAt) || !t.After(g.capFrom) {
		return false
	}
	g.capFrom = t
	ended := !g.haltUntil.IsZero()
	g.haltUntil, g.tripID = time.Time{}, ""
	return ended
}

// TrippedAt returns when the current halt tripped, zero when not halted.
func (g *Guard) TrippedAt(now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.haltUntil) {
		return g.trippedAt
	}
	return time.Time{}
}

// add records st unless its action already has an earlier start.
func (g *Guard) add(st Start) {
	if old, ok := g.starts[st.ActionID]; ok && !st.At.Before(old.At) {
		return
	}
	g.starts[st.ActionID] = st
	if l, ok := g.last[st.Subject]; !ok || st.At.After(l.At) {
		g.last[st.Subject] = st
	}
}

// expire forgets starts older than both the cool-down and the cap window.
func (g *Guard) expire(now time.Time) {
	keep := max(g.cooldown, g.window)
	for id, st := range g.starts {
		if now.Sub(st.At) >= keep {
			delete(g.starts, id)
		}
	}
	for k, st := range g.last {
		if now.Sub(st.At) >= g.cooldown {
			delete(g.last, k)
		}
	}
	if !now.Before(g.haltUntil) {
		g.tripID = ""
	}
}

// inWindow counts the starts within the cap window before now.
func (g *Guard) inWindow(now time.Time) int {
	n := 0
	for _, st := range g.starts {
		if now.Sub(st.At) < g.window && !st.At.Before(g.capFrom) {
			n++
		}
	}
	return n
}

// Halted returns when the current halt ends, zero when not halted.
func (g *Guard) Halted(now time.Time) time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now.Before(g.haltUntil) {
		return g.haltUntil
	}
	return time.Time{}
}

// Judge decides whether in may be sent at now and, when it may (or would,
// in dry-run), counts it against the cool-down and the cap. The order of
// the checks: allowlists; an action already started continues; the halt;
// the cool-down; the cap. Dry-run applies them all and records dry_run
// where it would have sent. The action that trips the cap is judged
// Tripped again (same id) until its halt ends, so its record and its
// revocation_halted anomaly are made even if the first try was lost.
func (g *Guard) Judge(in *Intent, now time.Time) Verdict {
	switch {
	case in.UserID != "" && g.users[in.UserID]:
		return Verdict{Status: StatusSuppressed, Guardrail: GuardAllowUser}
	case g.tenants[in.Tenant]:
		return Verdict{Status: StatusSuppressed, Guardrail: GuardAllowTenant}
	case g.allowedIP(in.IP):
		return Verdict{Status: StatusSuppressed, Guardrail: GuardAllowCIDR}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.expire(now)
	count := g.inWindow(now)
	if _, ok := g.starts[in.ID]; ok { // started before: finish what was decided
		return g.pass(count)
	}
	if now.Before(g.haltUntil) {
		if in.ID == g.tripID {
			return Verdict{Status: StatusSuppressed, Guardrail: GuardBlastRadius, Tripped: true, Count: count}
		}
		return Verdict{Status: StatusSuppressed, Guardrail: GuardHalted, Count: count}
	}
	key := in.SubjectKeyUnder(g.pseudonyms)
	if l, ok := g.last[key]; ok && now.Sub(l.At) < g.cooldown {
		return Verdict{Status: StatusSuppressed, Guardrail: GuardCooldown}
	}
	if count >= g.max {
		g.haltUntil, g.trippedAt, g.tripID = now.Add(g.halt), now, in.ID
		return Verdict{Status: StatusSuppressed, Guardrail: GuardBlastRadius, Tripped: true, Count: count}
	}
	g.add(Start{ActionID: in.ID, Subject: key, At: now})
	return g.pass(count + 1)
}

func (g *Guard) pass(count int) Verdict {
	if g.dryRun {
		return Verdict{Status: StatusDryRun, Count: count}
	}
	return Verdict{Send: true, Count: count}
}

func (g *Guard) allowedIP(ip string) bool {
	if len(g.nets) == 0 || ip == "" {
		return false
	}
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range g.nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
