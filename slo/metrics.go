package slo

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the SLI counters exported while events are consumed: the
// good and bad events of each SLO, weighted by sample_rate. Recording and
// alerting rules are built on them; the label carries only the SLO name.
type Metrics struct {
	// Events is vigil_slo_events_total{slo, result="good|bad"}.
	Events *prometheus.CounterVec
}

// NewMetrics creates the counters for the set's SLOs (both results, so
// that a rate over a quiet window is 0, not absent) and registers them
// with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer, set *Set) *Metrics {
	m := &Metrics{Events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vigil_slo_events_total", Help: "Events counted by each SLO, by result, weighted by sample_rate.",
	}, []string{"slo", "result"})}
	if set != nil {
		for _, s := range set.Specs() {
			m.Events.WithLabelValues(s.Name, "good")
			m.Events.WithLabelValues(s.Name, "bad")
		}
	}
	if reg != nil {
		reg.MustRegister(m.Events)
	}
	return m
}

// Add adds a tally of the set to the counters.
func (m *Metrics) Add(set *Set, t *Tally) {
	for i, s := range set.Specs() {
		if t.Good[i] > 0 {
			m.Events.WithLabelValues(s.Name, "good").Add(t.Good[i])
		}
		if t.Bad[i] > 0 {
			m.Events.WithLabelValues(s.Name, "bad").Add(t.Bad[i])
		}
	}
}
