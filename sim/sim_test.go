package sim

import (
	"bytes"
	"testing"
	"time"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/sim/truth"
)

var testStart = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC) // a Monday

// run simulates cfg to its end and returns the encoded events and the truth.
func run(t *testing.T, cfg Config) ([][]byte, []truth.Scenario) {
	t.Helper()
	var recs []truth.Scenario
	s, err := New(cfg, WithTruth(func(r truth.Scenario) { recs = append(recs, r) }), WithWallClock(func() time.Time { return testStart }))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for e := s.Next(); e != nil; e = s.Next() {
		out = append(out, schemas.AppendJSON(nil, e))
	}
	s.Close()
	return out, recs
}

func TestSmoke(t *testing.T) {
	names := ScenarioNames()
	specs, err := Spread(names, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	evs, recs := run(t, Config{Seed: 1, Users: 3000, Rate: 500, Start: testStart, Duration: 10 * time.Minute, Scenarios: specs})
	counts := map[string]int{}
	dec := schemas.NewDecoder(schemas.DecoderConfig{Now: func() time.Time { return testStart.Add(time.Hour) }})
	for _, b := range evs {
		var e schemas.Event
		if err := dec.Decode(b, &e); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		counts[e.Type.String()]++
	}
	t.Logf("%d events: %v", len(evs), counts)
	for _, r := range recs {
		t.Logf("%s %s events=%d first=%s users=%d sessions=%d ips=%d %s", r.Instance, r.Class, r.Events, r.FirstOffending.Format(time.TimeOnly), len(r.UserIDs), len(r.SessionIDs), len(r.IPs), r.Note)
	}
	_ = bytes.Clone
}
