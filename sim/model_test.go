package sim

import (
	"slices"
	"testing"
	"time"

	"github.com/vigilhq/vigil/schemas"
)

// TestTrafficIsPlausible checks the normal traffic against what a session
// service looks like: the mix of operations, login failure rates, latency
// medians per operation, devices per user, stable clients, token chains
// and the load curve.
func TestTrafficIsPlausible(t *testing.T) {
	t.Parallel()
	r := simulate(t, Config{Seed: 5, Users: 3000, Rate: 300, Start: testStart, Duration: 10 * time.Minute})
	count := map[schemas.Type]int{}
	lat := map[string][]float64{}
	failed := map[string]int{}
	devices := map[string]map[string]bool{}   // user → devices
	deviceASN := map[string]map[uint32]bool{} // device → ASNs it used
	latest := map[string]string{}             // family → current token
	for i := range r.evs {
		e := &r.evs[i]
		count[e.Type]++
		if e.HasLatency && e.Outcome != schemas.OutcomeFailure && e.Reason == "" {
			k := e.Type.String()
			if e.Type == schemas.TypeSessionCreated {
				k += "/" + e.AuthMethod
			}
			lat[k] = append(lat[k], e.LatencyMS)
		}
		if e.Type == schemas.TypeLoginFailed {
			failed[e.Reason]++
		}
		if e.UserID != "" && e.DeviceID != "" && e.Source == "sim" {
			if devices[e.UserID] == nil {
				devices[e.UserID] = map[string]bool{}
			}
			devices[e.UserID][e.DeviceID] = true
			if deviceASN[e.DeviceID] == nil {
				deviceASN[e.DeviceID] = map[uint32]bool{}
			}
			deviceASN[e.DeviceID][e.ASN] = true
		}
		// Refresh chains: each exchange presents the family's current token.
		switch e.Type {
		case schemas.TypeSessionCreated:
			latest[e.FamilyID] = e.TokenID
		case schemas.TypeTokenRefreshed:
			if cur, ok := latest[e.FamilyID]; ok && cur != e.ParentTokenID {
				t.Fatalf("%s: family %s exchanged %s, but its current token is %s", e.ID, e.FamilyID, e.ParentTokenID, cur)
			}
			latest[e.FamilyID] = e.TokenID
		}
	}
	total := len(r.evs)
	share := func(ty schemas.Type) float64 { return float64(count[ty]) / float64(total) }
	if s := share(schemas.TypeSessionValidated); s < 0.85 || s > 0.995 {
		t.Errorf("validations are %.1f%% of traffic, want most of it", 100*s)
	}
	if count[schemas.TypeTokenRefreshed] == 0 || count[schemas.TypeSessionLogout] == 0 || count[schemas.TypeSessionExpired] == 0 || count[schemas.TypeSessionElevated] == 0 {
		t.Errorf("a lifecycle step is missing: %v", count)
	}
	attempts := count[schemas.TypeSessionCreated] + count[schemas.TypeLoginFailed]
	if f := float64(count[schemas.TypeLoginFailed]) / float64(attempts); f < 0.02 || f > 0.12 {
		t.Errorf("%.1f%% of logins fail (%v), want a few percent", 100*f, failed)
	}
	for _, reason := range []string{"bad_password", "unknown_user", "mfa_failed"} {
		if failed[reason] == 0 {
			t.Errorf("no login failed with %s: %v", reason, failed)
		}
	}
	median := func(xs []float64) float64 {
		slices.Sort(xs)
		return xs[len(xs)/2]
	}
	for k, want := range map[string][2]float64{
		"session.validated":        {1, 4},
		"token.refreshed":          {6, 25},
		"session.created/password": {80, 300},
		"session.created/passkey":  {30, 120},
		"session.created/mfa":      {500, 1200},
	} {
		if len(lat[k]) < 10 {
			t.Errorf("%s: only %d latencies", k, len(lat[k]))
			continue
		}
		if m := median(lat[k]); m < want[0] || m > want[1] {
			t.Errorf("%s: median latency %.1f ms, want %v", k, m, want)
		}
		if p99, m := lat[k][len(lat[k])*99/100], median(lat[k]); p99 < 2*m {
			t.Errorf("%s: p99 %.1f ms is not a tail above the median %.1f ms", k, p99, m)
		}
	}
	most := 0
	for _, ds := range devices {
		most = max(most, len(ds))
	}
	if most < 2 || most > 3 {
		t.Errorf("a user has at most %d devices, want 1–3", most)
	}
	for d, asns := range deviceASN {
		if len(asns) > 2 { // home network, and a phone's carrier
			t.Errorf("device %s used %d ASNs", d, len(asns))
		}
	}
	at := func(h int) float64 { return load(time.Date(2026, 3, 4, h, 0, 0, 0, time.UTC)) }
	if !(at(4) < at(9) && at(9) < at(14)) || load(time.Date(2026, 3, 7, 14, 0, 0, 0, time.UTC)) >= at(14) {
		t.Errorf("load curve: 04:00 %.2f, 09:00 %.2f, 14:00 %.2f, Saturday 14:00 %.2f", at(4), at(9), at(14), load(time.Date(2026, 3, 7, 14, 0, 0, 0, time.UTC)))
	}
}
