package detect

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the detectors' Prometheus metrics. No label carries a
// user, session, token or address.
type Metrics struct {
	// Anomalies counts anomalies raised, by detector, kind, severity and shadow.
	Anomalies *prometheus.CounterVec
	// Benign counts look-alikes judged benign, by detector and kind (same_client_race).
	Benign *prometheus.CounterVec
	// Suppressed counts findings not raised again inside a detector's realert_after.
	Suppressed *prometheus.CounterVec
	// Expired counts families forgotten after state_ttl without events.
	Expired prometheus.Counter
	// Families is the number of families held, by partition.
	Families *prometheus.GaugeVec
	// EventSeconds is the time the stream detectors take for one event (one event in 64 is timed).
	EventSeconds prometheus.Histogram
	// RebuildSeconds is the time to rebuild a partition's state on assignment.
	RebuildSeconds prometheus.Histogram
	// RebuildEvents counts stored events replayed into the state by rebuilds.
	RebuildEvents prometheus.Counter
	// RebuildErrors counts failed rebuild attempts (retried until detect.rebuild_timeout).
	RebuildErrors prometheus.Counter
	// RebuildsAbandoned counts partitions consumed with empty state because their rebuild kept failing.
	RebuildsAbandoned prometheus.Counter
	// HandoffSeconds is the time from reading an offending message to its anomaly being durable and handed on.
	HandoffSeconds prometheus.Histogram
	// WindowRoundSeconds is the time of one round of the window detectors.
	WindowRoundSeconds prometheus.Histogram
	// WindowErrors counts failed rounds of the window detectors (retried next round).
	WindowErrors prometheus.Counter
	// Watermark is the event time (unix seconds) up to which windows are complete.
	Watermark prometheus.Gauge
	// WindowLag is how far the last judged window ends behind the wall clock, in seconds.
	WindowLag prometheus.Gauge
	// WindowActive is 1 in the one process of the group that runs the window detectors.
	WindowActive prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_anomalies_total", Help: "Anomalies raised by detectors.",
		}, []string{"detector", "kind", "severity", "shadow"}),
		Benign: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_detect_benign_total", Help: "Look-alikes the detectors judged benign and did not raise.",
		}, []string{"detector", "kind"}),
		Suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_detect_suppressed_total", Help: "Findings not raised again within the detector's realert_after.",
		}, []string{"detector"}),
		Expired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_families_expired_total", Help: "Families forgotten after detect.state_ttl without events.",
		}),
		Families: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_detect_families", Help: "Refresh-token families held in stream detector state.",
		}, []string{"partition"}),
		EventSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_detect_event_duration_seconds", Help: "Time the stream detectors take for one event (sampled 1 in 64).",
			Buckets: prometheus.ExponentialBuckets(100e-9, 2, 14),
		}),
		RebuildSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_detect_rebuild_duration_seconds", Help: "Time to rebuild a partition's detector state on assignment.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}),
		RebuildEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_rebuild_events_total", Help: "Stored events replayed into detector state by rebuilds.",
		}),
		RebuildErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_rebuild_errors_total", Help: "Failed rebuild attempts (retried until detect.rebuild_timeout).",
		}),
		RebuildsAbandoned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_rebuilds_abandoned_total", Help: "Partitions consumed with empty detector state because their rebuild kept failing.",
		}),
		HandoffSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_detect_handoff_seconds", Help: "Time from reading an offending message to its anomaly being durable and handed on.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		WindowRoundSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_detect_window_round_duration_seconds", Help: "Time of one round of the window detectors.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}),
		WindowErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_detect_window_errors_total", Help: "Failed rounds of the window detectors (retried next round).",
		}),
		Watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_detect_watermark_seconds", Help: "Event time (unix seconds) up to which stored events are complete for the window detectors.",
		}),
		WindowLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_detect_window_lag_seconds", Help: "How far the end of the last judged window is behind the wall clock.",
		}),
		WindowActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_detect_window_active", Help: "1 in the process of the consumer group that runs the window detectors (the owner of partition 0).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.WindowRoundSeconds, m.WindowErrors, m.Watermark, m.WindowLag, m.WindowActive)
		reg.MustRegister(m.Anomalies, m.Benign, m.Suppressed, m.Expired, m.Families, m.EventSeconds,
			m.RebuildSeconds, m.RebuildEvents, m.RebuildErrors, m.RebuildsAbandoned, m.HandoffSeconds)
	}
	return m
}
