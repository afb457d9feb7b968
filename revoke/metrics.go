package revoke

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the revocation path's Prometheus metrics. No label carries a
// user, session, token or address; endpoint is the session API's
// scheme://host.
type Metrics struct {
	// Intents counts action intents produced to the outbox, by action.
	Intents *prometheus.CounterVec
	// Decisions counts final decisions by status (succeeded, failed, dry_run, suppressed) and guardrail.
	Decisions *prometheus.CounterVec
	// Attempts counts calls to the session API by endpoint and outcome (done, retry, permanent, circuit_open).
	Attempts *prometheus.CounterVec
	// AttemptSeconds is the duration of one call to the session API.
	AttemptSeconds *prometheus.HistogramVec
	// TimeToRevoke is from the first offending event to the session API's acknowledgement.
	TimeToRevoke prometheus.Histogram
	// CircuitOpen is 1 while an endpoint's circuit breaker is open (or half-open).
	CircuitOpen *prometheus.GaugeVec
	// Halted is 1 while the blast-radius cap keeps revocation halted.
	Halted prometheus.Gauge
	// InFlight is the number of actions being sent or retried.
	InFlight prometheus.Gauge
	// Invalid counts outbox messages that are not intents (logged and skipped).
	Invalid prometheus.Counter
	// StoreErrors counts failed writes of actions rows (retried).
	StoreErrors prometheus.Counter
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_revoke_intents_total", Help: "Action intents produced to the outbox topic, by action.",
		}, []string{"action"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_revoke_actions_total", Help: "Actions ended, by final status and the guardrail that suppressed them.",
		}, []string{"status", "guardrail"}),
		Attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_revoke_attempts_total", Help: "Calls to the session API by endpoint and outcome.",
		}, []string{"endpoint", "outcome"}),
		AttemptSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_revoke_attempt_duration_seconds", Help: "Duration of one call to the session API.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		TimeToRevoke: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_revoke_time_to_revoke_seconds", Help: "Time from the first offending event to the session API acknowledging its revocation.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900},
		}),
		CircuitOpen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_revoke_circuit_open", Help: "1 while the circuit breaker of an endpoint is open or half-open.",
		}, []string{"endpoint"}),
		Halted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_revoke_halted", Help: "1 while the blast-radius cap keeps revocation halted.",
		}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_revoke_in_flight", Help: "Actions being sent or retried.",
		}),
		Invalid: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_revoke_invalid_intents_total", Help: "Outbox messages that are not valid intents (skipped).",
		}),
		StoreErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_revoke_store_errors_total", Help: "Failed writes of actions rows to ClickHouse (retried).",
		}),
	}
	// Series alerts watch exist from the start at 0, so that increase()
	// sees the first failure.
	m.Decisions.WithLabelValues(string(StatusFailed), "")
	m.Decisions.WithLabelValues(string(StatusSuppressed), GuardBlastRadius)
	if reg != nil {
		reg.MustRegister(m.Intents, m.Decisions, m.Attempts, m.AttemptSeconds, m.TimeToRevoke, m.CircuitOpen, m.Halted, m.InFlight, m.Invalid, m.StoreErrors)
	}
	return m
}
