package detect_test

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vigilhq/vigil/detect"
	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim"
	"github.com/vigilhq/vigil/sim/score"
	"github.com/vigilhq/vigil/sim/truth"
)

// simStart is a Monday morning, like the simulator's own tests.
var simStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// runSim drives a simulation through the stream detectors with the default
// config, partitioned by the simulator's Kafka key as the topic would be,
// and scores the anomalies against the simulation's truth.
func runSim(t *testing.T, cfg sim.Config, partitions int) (score.Report, []detect.Anomaly, *detect.Metrics) {
	t.Helper()
	var recs []truth.Scenario
	s, err := sim.New(cfg, sim.WithTruth(func(r truth.Scenario) { recs = append(recs, r) }),
		sim.WithWallClock(func() time.Time { return simStart }))
	if err != nil {
		t.Fatal(err)
	}
	m := detect.NewMetrics(nil)
	reg, err := detect.NewRegistry(detect.DefaultConfig(), detect.RegistryOptions{Metrics: m, Now: func() time.Time { return simStart }})
	if err != nil {
		t.Fatal(err)
	}
	parts := make([]*detect.Partition, partitions)
	for i := range parts {
		parts[i] = reg.Partition(int32(i))
	}
	end := cfg.Start.Add(cfg.Duration)
	dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return end.Add(time.Hour) }})
	var (
		buf  []byte
		ev   schemas.Event
		as   []detect.Anomaly
		offs = make([]int64, partitions)
	)
	for e := s.Next(); e != nil; e = s.Next() {
		buf = schemas.AppendJSON(buf[:0], e)
		if err := dec.Decode(buf, &ev); err != nil {
			t.Fatalf("event does not decode: %v\n%s", err, buf)
		}
		h := fnv.New32a()
		h.Write([]byte(sim.Key(e)))
		p := int(h.Sum32() % uint32(partitions))
		as = parts[p].Observe(&ev, offs[p], as)
		offs[p]++
	}
	s.Close()
	return score.Score(truth.File{Scenarios: recs}, scored(as, false), score.Options{}), as, m
}

// scored converts anomalies to the scorer's rows; with windowEnd, each one
// counts as detected at the end of its window (event time), not at its
// wall-clock detected_at.
func scored(as []detect.Anomaly, windowEnd bool) []score.Anomaly {
	sa := make([]score.Anomaly, len(as))
	for i, a := range as {
		sa[i] = score.Anomaly{
			ID: a.ID, Detector: a.Detector, Kind: a.Kind, Severity: a.Severity.String(), Shadow: a.Shadow,
			Tenant: a.Tenant, UserID: a.UserID, SessionID: a.SessionID, FamilyID: a.FamilyID, IP: a.IP,
			Evidence: a.Evidence, FirstEventTime: a.FirstEventTime, DetectedAt: a.DetectedAt,
			WindowStart: a.WindowStart, WindowEnd: a.WindowEnd,
		}
		if windowEnd {
			sa[i].DetectedAt = a.WindowEnd
		}
	}
	return sa
}

// TestAgainstSimulator is acceptance point 3: across five seeds every
// instance of the three attacks the stream detectors cover is detected,
// and the benign look-alikes and normal traffic raise nothing.
func TestAgainstSimulator(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			cfg := sim.Config{
				Seed: seed, Users: 4000, Tenants: 3, Rate: 300, Start: simStart, Duration: 5 * time.Minute,
				Scenarios: []sim.ScenarioSpec{
					{Name: "token_theft_replay", At: 30 * time.Second},
					{Name: "concurrent_hijack", At: 60 * time.Second},
					{Name: "revocation_not_enforced", At: 90 * time.Second},
					{Name: "multi_tab_refresh", At: 20 * time.Second, Duration: 4 * time.Minute},
					{Name: "mobile_retry", At: 40 * time.Second, Duration: 4 * time.Minute},
				},
			}
			rep, as, m := runSim(t, cfg, 4)
			var table bytes.Buffer
			rep.WriteTable(&table)
			bad := false
			for _, r := range rep.Rows {
				switch {
				case r.Class == truth.ClassBenign:
					if *r.FalsePositiveAnomalies != 0 {
						t.Errorf("%s: %d false positive anomalies (%v)", r.Scenario, *r.FalsePositiveAnomalies, r.FalsePositiveDetectors)
						bad = true
					}
				case r.Instances == 0:
					t.Errorf("%s: no instance ran", r.Scenario)
					bad = true
				case *r.Detected != r.Instances:
					t.Errorf("%s/%s: detected %d of %d instances, missed %v", r.Scenario, r.Detector, *r.Detected, r.Instances, r.MissedInstances)
					bad = true
				}
			}
			seen := map[string]bool{}
			for _, r := range rep.Rows {
				seen[r.Scenario] = true
			}
			for _, sp := range cfg.Scenarios {
				if !seen[sp.Name] {
					t.Errorf("no scorecard row for %s", sp.Name)
					bad = true
				}
			}
			// The look-alikes did reach the detector: the races were judged benign, not missed.
			if n := testutil.ToFloat64(m.Benign.WithLabelValues("token_reuse", "same_client_race")); n < 20 {
				t.Errorf("same-client races judged benign: %g, want at least 20 (multi_tab_refresh and mobile_retry)", n)
			}
			if n := *rep.NormalTraffic.FalsePositiveAnomalies; n != 0 {
				t.Errorf("normal traffic: %d false positive anomalies (%v)", n, rep.NormalTraffic.FalsePositiveDetectors)
				bad = true
			}
			t.Logf("scorecard:\n%s", table.String())
			if bad {
				for _, a := range as {
					t.Logf("%s %s/%s %s fam=%s t=%s %s", a.ID[:8], a.Detector, a.Kind, a.Severity, a.FamilyID, a.FirstEventTime.Format(time.TimeOnly), a.Evidence)
				}
			}
		})
	}
}

// TestEveryScenario plays all of the simulator's scenarios at once: the
// stream detectors raise exactly one anomaly per instance of the attacks
// they cover and nothing about anything else (the other detectors'
// attacks and operational incidents, the benign look-alikes, normal
// traffic).
func TestEveryScenario(t *testing.T) {
	specs, err := sim.Spread(sim.ScenarioNames(), 12*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sim.Config{Seed: 11, Users: 10000, Tenants: 3, Rate: 300, Start: simStart, Duration: 12 * time.Minute, Scenarios: specs}
	rep, as, _ := runSim(t, cfg, 4)
	var table bytes.Buffer
	rep.WriteTable(&table)
	t.Logf("scorecard:\n%s", table.String())
	stream := map[string]bool{detect.TokenReuse: true, detect.SessionHijack: true, detect.UseAfterRevocation: true}
	instances := 0
	for _, r := range rep.Rows {
		switch {
		case r.Class == truth.ClassBenign || !stream[r.Detector]:
			if n := *r.FalsePositiveAnomalies; n != 0 {
				t.Errorf("%s: %d false positive anomalies", r.Scenario, n)
			}
			if len(r.OtherDetectors) != 0 {
				t.Errorf("%s: stream detectors raised %v about it", r.Scenario, r.OtherDetectors)
			}
		case *r.Detected != r.Instances:
			t.Errorf("%s: detected %d of %d", r.Scenario, *r.Detected, r.Instances)
		default:
			instances += r.Instances
		}
	}
	if n := *rep.NormalTraffic.FalsePositiveAnomalies; n != 0 {
		t.Errorf("normal traffic: %d false positive anomalies", n)
	}
	if instances == 0 || len(as) != instances {
		t.Errorf("%d anomalies for %d attack instances, want exactly one each", len(as), instances)
	}
}
