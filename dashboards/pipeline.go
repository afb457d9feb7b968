package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// pipelineDashboard: is the pipeline keeping up? Consumption, lag, inserts,
// dead letters, detectors, the revoker and alert delivery.
func pipelineDashboard() *dashboard.DashboardBuilder {
	return newDashboard("vigil-pipeline", "vigil / Pipeline",
		"Is vigil keeping up: events consumed, consumer lag per partition, ClickHouse insert latency, dead letters by reason, detector watermarks, revoker and alert delivery health.", "now-3h").
		WithRow(row("Health")).
		WithPanel(statPanel(spec{title: "Ingest ready", unit: "bool_yes_no",
			description: "Yes when every vigil ingest process has partitions and ClickHouse answers (the minimum over processes)."},
			thresholds(base("red"), at(1, "green")),
			prom(`min(vigil_ingest_ready)`, "ready"))).
		WithPanel(statPanel(spec{title: "Max consumer lag", unit: "s",
			description: "Event-time lag of the furthest-behind partition: the age of its oldest uncommitted event (0 when caught up). Yellow from 10s, red from a minute."},
			thresholds(base("green"), at(10, "yellow"), at(60, "red")),
			prom(`max(vigil_ingest_lag_seconds)`, "lag"))).
		WithPanel(statPanel(spec{title: "Dead letters (range)", unit: "short",
			description: "Invalid events sent to the dead-letter topic in the time range."},
			thresholds(base("green"), at(1, "yellow"), at(100, "red")),
			prom(`sum(increase(vigil_ingest_invalid_total[$__range]))`, "dead letters"))).
		WithPanel(statPanel(spec{title: "Revocation circuits open", unit: "short",
			description: "Session-API endpoints whose circuit breaker is open: vigil is not calling them until they recover."},
			thresholds(base("green"), at(1, "red")),
			prom(`sum(vigil_revoke_circuit_open)`, "open"))).
		WithRow(row("Ingest")).
		WithPanel(timeSeries(spec{title: "Events consumed", unit: "cps",
			description: "Valid events stored per second, by event type."},
			prom(`sum by (type) (rate(vigil_ingest_events_total[$__rate_interval]))`, "{{type}}"))).
		WithPanel(timeSeries(spec{title: "Consumer lag per partition", unit: "s",
			description: "Event-time lag of each partition: the age of its oldest uncommitted event, 0 when caught up."},
			prom(`max by (topic, partition) (vigil_ingest_lag_seconds)`, "{{topic}}/{{partition}}"))).
		WithPanel(timeSeries(spec{title: "Consumer lag in messages", unit: "short",
			description: "Messages between each partition's high watermark and vigil's committed offset."},
			prom(`max by (topic, partition) (vigil_ingest_lag_messages)`, "{{topic}}/{{partition}}"))).
		WithPanel(timeSeries(spec{title: "ClickHouse insert latency", unit: "s",
			description: "p50 and p99 of one batch insert, by table."},
			prom(`histogram_quantile(0.5, sum by (le, table) (rate(vigil_ingest_insert_duration_seconds_bucket[$__rate_interval])))`, "p50 {{table}}"),
			prom(`histogram_quantile(0.99, sum by (le, table) (rate(vigil_ingest_insert_duration_seconds_bucket[$__rate_interval])))`, "p99 {{table}}"))).
		WithPanel(timeSeries(spec{title: "Retries", unit: "cps",
			description: "Retried operations per second (ClickHouse inserts, DLQ produce, hand-offs) and failed offset commits."},
			prom(`sum by (op) (rate(vigil_ingest_retries_total[$__rate_interval]))`, "{{op}}"),
			prom(`sum(rate(vigil_ingest_commit_errors_total[$__rate_interval]))`, "commit errors"))).
		WithPanel(timeSeries(spec{title: "Buffer fill", unit: "percentunit",
			description: "How full each partition worker's bounded channel is; near 1 the consumer is waiting for ClickHouse."},
			prom(`max by (partition) (vigil_ingest_buffer_fill_ratio)`, "{{partition}}"))).
		WithRow(row("Dead letters")).
		WithPanel(timeSeries(spec{title: "Dead letters by reason", unit: "cps",
			description: "Invalid events per second by the reason they were rejected."},
			prom(`sum by (reason) (rate(vigil_ingest_invalid_total[$__rate_interval]))`, "{{reason}}"))).
		WithPanel(tablePanel(spec{title: "Dead letters by reason and field", unit: "short", w: 12,
			description: "Stored dead letters in the range by reason and offending field, with an example, from ClickHouse."},
			chTable(`
SELECT reason, field, count() AS messages, any(detail) AS example
FROM dead_letters FINAL
WHERE $__timeFilter(received_at)
GROUP BY reason, field
ORDER BY messages DESC
LIMIT 50`))).
		WithRow(row("Detectors")).
		WithPanel(timeSeries(spec{title: "Window detector lag", unit: "s",
			description: "How far the window detectors' watermark trails the wall clock; a growing line means they are stalled."},
			prom(`max(vigil_detect_window_lag_seconds)`, "lag"))).
		WithPanel(timeSeries(spec{title: "Detector work", unit: "s",
			description: "p99 time to judge one event in the stream detectors and to run one round of window detectors."},
			prom(`histogram_quantile(0.99, sum by (le) (rate(vigil_detect_event_duration_seconds_bucket[$__rate_interval])))`, "p99 per event"),
			prom(`histogram_quantile(0.99, sum by (le) (rate(vigil_detect_window_round_duration_seconds_bucket[$__rate_interval])))`, "p99 window round"))).
		WithRow(row("Revoker and alerts")).
		WithPanel(timeSeries(spec{title: "Actions by status", unit: "cps",
			description: "Revocation decisions per second by status and the guardrail that suppressed them."},
			prom(`sum by (status, guardrail) (rate(vigil_revoke_actions_total[$__rate_interval]))`, "{{status}} {{guardrail}}"))).
		WithPanel(timeSeries(spec{title: "Session API latency", unit: "s",
			description: "p99 of one revocation request, by endpoint."},
			prom(`histogram_quantile(0.99, sum by (le, endpoint) (rate(vigil_revoke_attempt_duration_seconds_bucket[$__rate_interval])))`, "p99 {{endpoint}}"))).
		WithPanel(timeSeries(spec{title: "Revoker state", unit: "short",
			description: "Actions in flight, endpoints with an open circuit, and whether the revoker is halted by the blast-radius cap."},
			prom(`sum(vigil_revoke_in_flight)`, "in flight"),
			prom(`sum(vigil_revoke_circuit_open)`, "circuits open"),
			prom(`max(vigil_revoke_halted)`, "halted"))).
		WithPanel(timeSeries(spec{title: "Alert delivery", unit: "cps",
			description: "Alerts posted to each Alertmanager per second and failed posts (retried)."},
			prom(`sum by (alertmanager) (rate(vigil_alerts_sent_total[$__rate_interval]))`, "sent {{alertmanager}}"),
			prom(`sum by (alertmanager) (rate(vigil_alerts_errors_total[$__rate_interval]))`, "errors {{alertmanager}}")))
}
