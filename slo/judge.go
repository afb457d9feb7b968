package slo

import (
	"slices"

	"github.com/vigilhq/vigil/schemas"
)

// Set is a validated list of specs compiled for judging events. It is
// immutable and safe for concurrent use.
type Set struct {
	specs  []Spec
	byType [16][]rule // rules by event type
}

// rule is one spec's judgement of one event type.
type rule struct {
	slo       int
	latency   bool
	threshold float64
	bad       []string // failure reasons that make a ratio event bad
}

// NewSet validates specs and compiles them.
func NewSet(specs []Spec) (*Set, error) {
	if err := Validate(specs); err != nil {
		return nil, err
	}
	s := &Set{specs: slices.Clone(specs)}
	for i, sp := range specs {
		switch {
		case sp.SLI.Ratio != nil:
			for _, name := range sp.SLI.Ratio.Events {
				t, _ := schemas.ParseType(name)
				s.byType[t] = append(s.byType[t], rule{slo: i, bad: sp.SLI.Ratio.BadReasons})
			}
		case sp.SLI.Latency != nil:
			for _, name := range sp.SLI.Latency.Events {
				t, _ := schemas.ParseType(name)
				s.byType[t] = append(s.byType[t], rule{slo: i, latency: true, threshold: sp.SLI.Latency.ThresholdMS})
			}
		}
	}
	return s, nil
}

// Specs returns the specs of the set, in order.
func (s *Set) Specs() []Spec { return s.specs }

// Tally is weighted good and bad event counts per SLO of a Set, in the
// Set's order. The zero value is ready for NewTally's length only: use
// Set.NewTally.
type Tally struct {
	Good, Bad []float64
}

// NewTally returns an empty tally for the set.
func (s *Set) NewTally() *Tally {
	return &Tally{Good: make([]float64, len(s.specs)), Bad: make([]float64, len(s.specs))}
}

// Reset empties the tally.
func (t *Tally) Reset() {
	clear(t.Good)
	clear(t.Bad)
}

// Add judges event e against every SLO that counts its type and adds its
// weight (its sample_rate) to good or bad. Enforcement SLIs are not judged
// per event: a revocation's outcome is known only later.
func (s *Set) Add(t *Tally, e *schemas.Event) {
	if int(e.Type) >= len(s.byType) {
		return
	}
	w := e.SampleRate
	if w < 1 {
		w = 1
	}
	for _, r := range s.byType[e.Type] {
		var good bool
		if r.latency {
			if !e.HasLatency {
				continue
			}
			good = e.LatencyMS <= r.threshold
		} else {
			failed := e.Outcome == schemas.OutcomeFailure || e.Type == schemas.TypeLoginFailed || e.Type == schemas.TypeTokenRefreshFailed
			good = !failed || !slices.Contains(r.bad, e.Reason)
		}
		if good {
			t.Good[r.slo] += w
		} else {
			t.Bad[r.slo] += w
		}
	}
}
