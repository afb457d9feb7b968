package revoke

import (
	"net/netip"
	"slices"
	"sync"
	"time"
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

// Guard holds the guardrails' state: allowlists, per-subject cool-down,
// the blast-radius cap and its halt. It is safe for concurrent use;
// Judge is called in outbox order so that decisions on one subject are
// made in the order the intents were produced.
type Guard struct {
	dryRun       bool
	users        map[string]bool
	tenants      map[string]bool
	nets         []netip.Prefix
	cooldown     time.Duration
	max          int
	window, halt time.Duration

	mu        sync.Mutex
	last      map[string]time.Time // subject key → latest revocation start
	starts    []time.Time          // revocation starts in the cap window, oldest first
	haltUntil time.Time
	trippedAt time.Time
}

// NewGuard returns the guardrails of c; c must be valid. dryRun forces
// dry-run on top of c.DryRun (no adapter configured).
func NewGuard(c Config, dryRun bool) *Guard {
	g := &Guard{
		dryRun: c.DryRun || dryRun, users: map[string]bool{}, tenants: map[string]bool{},
		cooldown: c.Cooldown, max: c.MaxActions, window: c.CapWindow, halt: c.HaltFor,
		last: map[string]time.Time{},
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

// Resume replaces the cool-down, cap and halt state with what was loaded
// from the actions table (on taking over the outbox).
func (g *Guard) Resume(s Seed, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for k, t := range s.Sent {
		if t.After(g.last[k]) {
			g.last[k] = t
		}
	}
	merged := append(append([]time.Time(nil), g.starts...), s.Starts...)
	g.starts = g.starts[:0]
	seen := map[time.Time]bool{}
	for _, t := range merged {
		if !seen[t] {
			seen[t] = true
			g.starts = append(g.starts, t)
		}
	}
	slices.SortFunc(g.starts, time.Time.Compare)
	if !s.TrippedAt.IsZero() && s.TrippedAt.After(g.trippedAt) {
		g.trippedAt = s.TrippedAt
		g.haltUntil = s.TrippedAt.Add(g.halt)
	}
	g.expire(now)
}

// expire drops cap-window starts and cool-downs that have passed.
func (g *Guard) expire(now time.Time) {
	cut := now.Add(-g.window)
	i := 0
	for i < len(g.starts) && !g.starts[i].After(cut) {
		i++
	}
	g.starts = g.starts[i:]
	if len(g.last) > 4096 {
		for k, t := range g.last {
			if now.Sub(t) >= g.cooldown {
				delete(g.last, k)
			}
		}
	}
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
// the checks: allowlists, halt, cool-down, cap; dry-run applies them all
// and records dry_run where it would have sent.
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
	if now.Before(g.haltUntil) {
		return Verdict{Status: StatusSuppressed, Guardrail: GuardHalted, Count: len(g.starts)}
	}
	key := in.SubjectKey()
	if t, ok := g.last[key]; ok && now.Sub(t) < g.cooldown {
		return Verdict{Status: StatusSuppressed, Guardrail: GuardCooldown}
	}
	if len(g.starts) >= g.max {
		g.trippedAt, g.haltUntil = now, now.Add(g.halt)
		return Verdict{Status: StatusSuppressed, Guardrail: GuardBlastRadius, Tripped: true, Count: len(g.starts)}
	}
	g.starts = append(g.starts, now)
	g.last[key] = now
	if g.dryRun {
		return Verdict{Status: StatusDryRun, Count: len(g.starts)}
	}
	return Verdict{Send: true, Count: len(g.starts)}
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
