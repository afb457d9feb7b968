package revoke_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vigilhq/vigil/revoke"
)

func intent(id, user, ip string) *revoke.Intent {
	return &revoke.Intent{ID: id, Action: revoke.RevokeFamily, Scope: revoke.ScopeFamily, Tenant: "t", UserID: user, FamilyID: "fam-" + user, IP: ip}
}

func TestGuardAllowlistsAndDryRun(t *testing.T) {
	c := revoke.DefaultConfig()
	c.AllowUsers, c.AllowTenants, c.AllowCIDRs = []string{"admin"}, []string{"internal"}, []string{"10.0.0.0/8", "2001:db8::/32"}
	now := time.Unix(1000, 0)
	f := func(g *revoke.Guard, in *revoke.Intent, want revoke.Verdict) {
		t.Helper()
		got := g.Judge(in, now)
		got.Count = 0
		if got != want {
			t.Errorf("Judge(%+v) = %+v, want %+v", *in, got, want)
		}
	}
	g := revoke.NewGuard(c, false)
	f(g, intent("1", "admin", ""), revoke.Verdict{Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowUser})
	in := intent("2", "bob", "")
	in.Tenant = "internal"
	f(g, in, revoke.Verdict{Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowTenant})
	f(g, intent("3", "carol", "10.1.2.3"), revoke.Verdict{Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowCIDR})
	f(g, intent("4", "dave", "::ffff:10.9.9.9"), revoke.Verdict{Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowCIDR})
	f(g, intent("5", "erin", "2001:db8::1"), revoke.Verdict{Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowCIDR})
	f(g, intent("6", "frank", "192.0.2.1"), revoke.Verdict{Send: true})

	c.DryRun = true
	g = revoke.NewGuard(c, false)
	f(g, intent("7", "frank", "192.0.2.1"), revoke.Verdict{Status: revoke.StatusDryRun})
	f(g, intent("8", "admin", ""), revoke.Verdict{Status: revoke.StatusSuppressed, Guardrail: revoke.GuardAllowUser})
	if !revoke.NewGuard(revoke.DefaultConfig(), true).DryRun() {
		t.Error("a guard without an adapter is not dry-run")
	}
}

func TestGuardCooldown(t *testing.T) {
	c := revoke.DefaultConfig()
	c.Cooldown = time.Minute
	g := revoke.NewGuard(c, false)
	t0 := time.Unix(1000, 0)
	if v := g.Judge(intent("a", "u", ""), t0); !v.Send {
		t.Fatalf("first action: %+v", v)
	}
	if v := g.Judge(intent("a", "u", ""), t0.Add(time.Second)); !v.Send {
		t.Errorf("the same action judged again (a moved partition) is stopped by its own cool-down: %+v", v)
	}
	if v := g.Judge(intent("b", "u", ""), t0.Add(30*time.Second)); v.Guardrail != revoke.GuardCooldown {
		t.Errorf("second action on the subject within the cool-down: %+v", v)
	}
	if v := g.Judge(intent("c", "other", ""), t0.Add(30*time.Second)); !v.Send {
		t.Errorf("another subject: %+v", v)
	}
	if v := g.Judge(intent("d", "u", ""), t0.Add(time.Minute)); !v.Send {
		t.Errorf("after the cool-down: %+v", v)
	}
}

// TestGuardBlastRadius: the cap trips on the action past max_actions, and
// everything is suppressed until halt_for passes; the window slides.
func TestGuardBlastRadius(t *testing.T) {
	c := revoke.DefaultConfig()
	c.MaxActions, c.CapWindow, c.HaltFor = 5, time.Minute, 10*time.Minute
	g := revoke.NewGuard(c, false)
	t0 := time.Unix(1000, 0)
	for i := range 5 {
		if v := g.Judge(intent(fmt.Sprint(i), fmt.Sprint("u", i), ""), t0.Add(time.Duration(i)*time.Second)); !v.Send {
			t.Fatalf("action %d: %+v", i, v)
		}
	}
	v := g.Judge(intent("5", "u5", ""), t0.Add(10*time.Second))
	if !v.Tripped || v.Guardrail != revoke.GuardBlastRadius || v.Count != 5 {
		t.Fatalf("action past the cap: %+v", v)
	}
	if until := g.Halted(t0.Add(10 * time.Second)); !until.Equal(t0.Add(10*time.Second + 10*time.Minute)) {
		t.Errorf("halted until %v", until)
	}
	// The tripping action is judged tripped again (its record may have been
	// lost); an action started before the trip still finishes.
	if v := g.Judge(intent("5", "u5", ""), t0.Add(20*time.Second)); !v.Tripped || v.Guardrail != revoke.GuardBlastRadius {
		t.Errorf("the tripping action again: %+v", v)
	}
	if v := g.Judge(intent("2", "u2", ""), t0.Add(20*time.Second)); !v.Send {
		t.Errorf("an action started before the trip, judged again: %+v", v)
	}

	// Even after the window slid, the halt holds until halt_for passes.
	if v := g.Judge(intent("6", "u6", ""), t0.Add(5*time.Minute)); v.Guardrail != revoke.GuardHalted || v.Tripped {
		t.Errorf("during the halt: %+v", v)
	}
	if v := g.Judge(intent("7", "u7", ""), t0.Add(11*time.Minute)); !v.Send {
		t.Errorf("after the halt: %+v", v)
	}

	// A guard resumed from the store knows the halt and the recent starts.
	g2 := revoke.NewGuard(c, false)
	g2.Resume(revoke.Seed{TrippedAt: t0.Add(10 * time.Second), TripID: "5"}, t0.Add(time.Minute))
	if v := g2.Judge(intent("8", "u8", ""), t0.Add(time.Minute)); v.Guardrail != revoke.GuardHalted {
		t.Errorf("resumed guard during the halt: %+v", v)
	}
	g3 := revoke.NewGuard(c, false)
	var starts []revoke.Start
	for i := range 5 {
		in := intent(fmt.Sprint("s", i), fmt.Sprint("u", i), "")
		starts = append(starts, revoke.Start{ActionID: in.ID, Subject: in.SubjectKey(), At: t0.Add(time.Duration(i) * time.Second)})
	}
	g3.Resume(revoke.Seed{Starts: starts}, t0.Add(10*time.Second))
	g3.Resume(revoke.Seed{Starts: starts}, t0.Add(10*time.Second)) // a second take-over counts nothing twice
	if v := g3.Judge(intent("9", "u0", ""), t0.Add(10*time.Second)); v.Guardrail != revoke.GuardCooldown {
		t.Errorf("resumed guard, subject in cool-down: %+v", v)
	}
	if v := g3.Judge(intent("s1", "u1", ""), t0.Add(10*time.Second)); !v.Send || v.Count != 5 {
		t.Errorf("resumed guard, an action started before the take-over: %+v, want it to continue, counted once", v)
	}
	if v := g3.Judge(intent("10", "u9", ""), t0.Add(10*time.Second)); !v.Tripped {
		t.Errorf("resumed guard at the cap: %+v", v)
	}
}
