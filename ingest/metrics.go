package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigilhq/vigil/schemas"
)

// Metrics are the ingest pipeline's Prometheus metrics. Labels carry only
// bounded values (event type, reason, table, operation, partition number).
type Metrics struct {
	Events         *prometheus.CounterVec
	Invalid        *prometheus.CounterVec
	Batches        prometheus.Counter
	RowsInserted   *prometheus.CounterVec
	InsertDuration *prometheus.HistogramVec
	CommitDuration prometheus.Histogram
	Commits        prometheus.Counter
	CommitErrors   prometheus.Counter
	Retries        *prometheus.CounterVec
	LagMessages    *prometheus.GaugeVec
	LagSeconds     *prometheus.GaugeVec
	CommittedOff   *prometheus.GaugeVec
	BufferFill     *prometheus.GaugeVec
	Assigned       prometheus.Gauge
	Rebalances     prometheus.Counter
	Ready          prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	lat := []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ingest_events_total", Help: "Valid events consumed, by event type.",
		}, []string{"type"}),
		Invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ingest_invalid_total", Help: "Messages rejected to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		Batches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_ingest_batches_total", Help: "Batches made durable (their offsets are then committed).",
		}),
		RowsInserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ingest_rows_inserted_total", Help: "Rows inserted into ClickHouse, by table.",
		}, []string{"table"}),
		InsertDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vigil_ingest_insert_duration_seconds", Help: "Duration of successful ClickHouse inserts, by table.", Buckets: lat,
		}, []string{"table"}),
		CommitDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "vigil_ingest_commit_duration_seconds", Help: "Duration of consumer-group offset commits.", Buckets: lat,
		}),
		Commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_ingest_commits_total", Help: "Successful offset commits.",
		}),
		CommitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_ingest_commit_errors_total", Help: "Failed offset commits (the offsets are committed again later or replayed).",
		}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "vigil_ingest_retries_total", Help: "Retried operations after a transient failure, by operation.",
		}, []string{"op"}),
		LagMessages: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_ingest_lag_messages", Help: "Log end offset minus the group's committed offset, per partition.",
		}, []string{"topic", "partition"}),
		LagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_ingest_lag_seconds", Help: "Age in event time of the oldest uncommitted event of a partition this process owns; 0 when caught up.",
		}, []string{"topic", "partition"}),
		CommittedOff: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_ingest_committed_offset", Help: "The group's committed offset, per partition.",
		}, []string{"topic", "partition"}),
		BufferFill: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vigil_ingest_buffer_fill_ratio", Help: "Fill of the bounded message buffer between fetch and decode, per owned partition (1 = full: pushing back).",
		}, []string{"partition"}),
		Assigned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_ingest_partitions_assigned", Help: "Partitions of the events topic this process owns.",
		}),
		Rebalances: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "vigil_ingest_generations_total", Help: "Consumer-group generations joined (1 + rebalances).",
		}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "vigil_ingest_ready", Help: "1 when migrated, consuming and ClickHouse is reachable.",
		}),
	}
	for _, t := range schemas.Types() {
		m.Events.WithLabelValues(t.String())
	}
	for _, r := range schemas.Reasons() {
		m.Invalid.WithLabelValues(string(r))
	}
	for _, t := range []string{"events", "dead_letters", "anomalies"} {
		m.RowsInserted.WithLabelValues(t)
	}
	for _, op := range []string{opInsertEvents, opInsertDeadLetters, opProduceDLQ, opInsertAnomalies, opHandOff, opRebuild} {
		m.Retries.WithLabelValues(op)
	}
	if reg != nil {
		reg.MustRegister(m.Events, m.Invalid, m.Batches, m.RowsInserted, m.InsertDuration,
			m.CommitDuration, m.Commits, m.CommitErrors, m.Retries, m.LagMessages, m.LagSeconds,
			m.CommittedOff, m.BufferFill, m.Assigned, m.Rebalances, m.Ready)
	}
	return m
}

// Retry operation label values.
const (
	opInsertEvents      = "insert_events"
	opInsertDeadLetters = "insert_dead_letters"
	opProduceDLQ        = "produce_dlq"
	opInsertAnomalies   = "insert_anomalies"
	opHandOff           = "hand_off_anomalies"
	opRebuild           = "rebuild_detector_state"
)
