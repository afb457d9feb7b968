package slo_test

import (
	"testing"

	"github.com/vigilhq/vigil/schemas"
	"github.com/vigilhq/vigil/slo"
)

// BenchmarkJudge is the cost the seed SLOs add to consuming one event
// (a mix of validations, refreshes and logins).
func BenchmarkJudge(b *testing.B) {
	set, err := slo.NewSet(slo.Defaults())
	if err != nil {
		b.Fatal(err)
	}
	evs := []schemas.Event{
		{Type: schemas.TypeSessionValidated, Outcome: schemas.OutcomeSuccess, SampleRate: 1, HasLatency: true, LatencyMS: 2},
		{Type: schemas.TypeSessionValidated, Outcome: schemas.OutcomeFailure, Reason: "revoked", SampleRate: 1},
		{Type: schemas.TypeTokenRefreshed, SampleRate: 1, HasLatency: true, LatencyMS: 12},
		{Type: schemas.TypeLoginFailed, Outcome: schemas.OutcomeFailure, Reason: "bad_password", SampleRate: 1},
		{Type: schemas.TypeSessionCreated, Outcome: schemas.OutcomeSuccess, SampleRate: 1, HasLatency: true, LatencyMS: 140},
	}
	t := set.NewTally()
	i := 0
	for b.Loop() {
		set.Add(t, &evs[i%len(evs)])
		i++
	}
}
