package slo_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vigilhq/vigil/internal/testenv"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/slo"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestDefaultsAreValid(t *testing.T) {
	if err := slo.Validate(slo.Defaults()); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range slo.Defaults() {
		names = append(names, s.Name)
	}
	want := []string{"validation-success", "refresh-success", "login-availability", "issuance-latency", "revocation-enforcement"}
	if !slices.Equal(names, want) {
		t.Errorf("seed SLOs %v, want %v", names, want)
	}
}

// TestLoad loads each file in testdata: the good one exactly, the others
// with every error naming the file, the line, the SLO and the field.
func TestLoad(t *testing.T) {
	day := model.Duration(24 * time.Hour)
	cases := map[string]struct {
		want    []slo.Spec
		wantErr []string
	}{
		"good.yaml": {want: []slo.Spec{
			{Name: "validation-success", Description: "Validations answer correctly.", Objective: 99.95, Window: 28 * day,
				SLI: slo.SLI{Ratio: &slo.RatioSLI{Events: []string{"session.validated"}, BadReasons: []string{"store_unavailable", "internal_error"}}}},
			{Name: "issuance-latency", Objective: 99, Window: 7 * day,
				SLI: slo.SLI{Latency: &slo.LatencySLI{Events: []string{"token.refreshed"}, ThresholdMS: 150}}},
			{Name: "revocation-enforcement", Objective: 99.9, Window: 30 * day,
				SLI: slo.SLI{Enforcement: &slo.EnforcementSLI{Within: model.Duration(10 * time.Second)}}},
		}},
		"bad.yaml": {wantErr: []string{
			`testdata/bad.yaml:2: slo "Login": name: must be 1–63 lower-case letters`,
			`testdata/bad.yaml:2: slo "Login": objective: must be between 0 and 100 (exclusive), got 100`,
			`testdata/bad.yaml:2: slo "Login": window: must be at least the longest alert window (3d) and at most 90d, got 2h`,
			`testdata/bad.yaml:2: slo "Login": sli.ratio.events: unknown event type "session.create" (known: session.created,`,
			`testdata/bad.yaml:2: slo "Login": sli.ratio.bad_reasons: must list at least one reason`,
			`testdata/bad.yaml:9: slo "latency": sli: must set exactly one of ratio, latency or enforcement, got 2`,
			`testdata/bad.yaml:9: slo "latency": sli.latency.threshold_ms: must be positive, got 0`,
			`testdata/bad.yaml:19: slo "enforced": sli.enforcement.within: must be between 0s (exclusive) and 1h, got 2h`,
		}},
		"misspelled.yaml": {wantErr: []string{`testdata/misspelled.yaml: yaml: unmarshal errors:`, `line 3: field objectiv not found`}},
		"duplicate.yaml":  {wantErr: []string{`testdata/duplicate.yaml: slo "twice": name: defined twice`}},
	}
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		name := filepath.Base(path)
		tc, ok := cases[name]
		if !ok {
			t.Errorf("%s has no test case", path)
			continue
		}
		t.Run(name, func(t *testing.T) {
			got, err := slo.Load(path)
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %d specs, want %d", len(got), len(tc.want))
				}
				for i := range got {
					g, w := got[i], tc.want[i]
					if g.Name != w.Name || g.Description != w.Description || g.Objective != w.Objective || g.Window != w.Window ||
						!sliEqual(g.SLI, w.SLI) {
						t.Errorf("spec %d = %+v, want %+v", i, g, w)
					}
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tc.wantErr {
				if !slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, want) }) {
					t.Errorf("no error line contains %q in:\n%v", want, err)
				}
			}
		})
	}
}

func sliEqual(a, b slo.SLI) bool {
	switch {
	case a.Ratio != nil && b.Ratio != nil:
		return slices.Equal(a.Ratio.Events, b.Ratio.Events) && slices.Equal(a.Ratio.BadReasons, b.Ratio.BadReasons) && a.Latency == nil && a.Enforcement == nil
	case a.Latency != nil && b.Latency != nil:
		return slices.Equal(a.Latency.Events, b.Latency.Events) && a.Latency.ThresholdMS == b.Latency.ThresholdMS && a.Ratio == nil && a.Enforcement == nil
	case a.Enforcement != nil && b.Enforcement != nil:
		return *a.Enforcement == *b.Enforcement && a.Ratio == nil && a.Latency == nil
	}
	return false
}

// TestJudge: which events count for which seed SLO, weighted by
// sample_rate, and which of them are good.
func TestJudge(t *testing.T) {
	set, err := slo.NewSet(slo.Defaults())
	if err != nil {
		t.Fatal(err)
	}
	ev := func(typ schemas.Type, outcome schemas.Outcome, reason string, latency float64, rate float64) schemas.Event {
		return schemas.Event{Type: typ, Outcome: outcome, Reason: reason, LatencyMS: latency, HasLatency: latency >= 0, SampleRate: rate}
	}
	f := func(name string, e schemas.Event, want map[string][2]float64) {
		t.Helper()
		tally := set.NewTally()
		set.Add(tally, &e)
		for i, s := range set.Specs() {
			got := [2]float64{tally.Good[i], tally.Bad[i]}
			if got != want[s.Name] {
				t.Errorf("%s: %s good/bad = %v, want %v", name, s.Name, got, want[s.Name])
			}
		}
	}
	f("a validation that succeeded, sampled 1 in 10", ev(schemas.TypeSessionValidated, schemas.OutcomeSuccess, "", 2, 10),
		map[string][2]float64{"validation-success": {10, 0}})
	f("a revoked session refused: a correct answer", ev(schemas.TypeSessionValidated, schemas.OutcomeFailure, "revoked", 2, 1),
		map[string][2]float64{"validation-success": {1, 0}})
	f("a store outage", ev(schemas.TypeSessionValidated, schemas.OutcomeFailure, "store_unavailable", 50, 1),
		map[string][2]float64{"validation-success": {0, 1}})
	f("a bad password is the user's failure", ev(schemas.TypeLoginFailed, schemas.OutcomeFailure, "bad_password", 140, 1),
		map[string][2]float64{"login-availability": {1, 0}})
	f("a login the store could not serve", ev(schemas.TypeLoginFailed, schemas.OutcomeFailure, "internal_error", 140, 1),
		map[string][2]float64{"login-availability": {0, 1}})
	f("a fast login", ev(schemas.TypeSessionCreated, schemas.OutcomeSuccess, "", 120, 1),
		map[string][2]float64{"login-availability": {1, 0}, "issuance-latency": {1, 0}})
	f("a slow refresh", ev(schemas.TypeTokenRefreshed, schemas.OutcomeNone, "", 201, 1),
		map[string][2]float64{"refresh-success": {1, 0}, "issuance-latency": {0, 1}})
	f("a refresh at the threshold", ev(schemas.TypeTokenRefreshed, schemas.OutcomeNone, "", 200, 1),
		map[string][2]float64{"refresh-success": {1, 0}, "issuance-latency": {1, 0}})
	f("a refresh without latency counts for success only", ev(schemas.TypeTokenRefreshed, schemas.OutcomeNone, "", -1, 1),
		map[string][2]float64{"refresh-success": {1, 0}})
	f("an expired refresh token refused", ev(schemas.TypeTokenRefreshFailed, schemas.OutcomeNone, "expired", 12, 1),
		map[string][2]float64{"refresh-success": {1, 0}})
	f("a refresh the store failed", ev(schemas.TypeTokenRefreshFailed, schemas.OutcomeNone, "store_unavailable", 300, 1),
		map[string][2]float64{"refresh-success": {0, 1}})
	f("a logout counts for nothing", ev(schemas.TypeSessionLogout, schemas.OutcomeNone, "logout", 4, 1), map[string][2]float64{})
}
