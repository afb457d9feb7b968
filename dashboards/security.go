package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// sessionLink opens a table row's subject in vigil-session, keeping the
// time range.
func sessionLink(title, kind, field string) *dashboard.DashboardLinkBuilder {
	return dashboard.NewDashboardLinkBuilder(title).
		Url("/d/vigil-session/vigil-session?var-kind=" + kind + "&var-subject=${__data.fields." + field + "}&${__url_time_range}&${prometheus:queryparam}&${clickhouse:queryparam}")
}

// securityDashboard: is anything under attack? Anomalies, what vigil did
// about them, and where failed logins come from.
func securityDashboard() *dashboard.DashboardBuilder {
	return newDashboard("vigil-security", "vigil / Security",
		"Anomalies by kind, the latest ones with links to their session timeline, revocations and their outcomes, failed logins by source, and token-reuse classifications.", "now-6h").
		WithVariable(tenantVariable()).
		WithRow(row("Anomalies")).
		WithPanel(statPanel(spec{title: "Anomalies (range)", unit: "short",
			description: "Anomalies raised in the time range (shadow-mode detectors included); yellow from 1, red from 10."},
			thresholds(base("green"), at(1, "yellow"), at(10, "red")),
			chSeries(`
SELECT `+bucket("first_event_time")+`, count() AS anomalies
FROM anomalies FINAL
WHERE $__timeFilter(first_event_time) AND `+tenantFilter+`
GROUP BY t
ORDER BY t`)).ReduceOptions(reduceSum())).
		WithPanel(statPanel(spec{title: "Sessions revoked (range)", unit: "short",
			description: "Revocations the session service acknowledged in the time range (each action once)."},
			thresholds(base("blue")),
			chSeries(`
SELECT `+bucket("time")+`, uniqExact(action_id) AS revoked
FROM actions
WHERE $__timeFilter(time) AND `+tenantFilter+` AND status = 'succeeded'
GROUP BY t
ORDER BY t`)).ReduceOptions(reduceSum())).
		WithPanel(statPanel(spec{title: "Time to revoke (p99)", unit: "s",
			description: "99th percentile over the time range of the time from the first offending event to the session API's acknowledgement (from this vigil's histogram; empty when nothing was revoked); the target is under a second."},
			thresholds(base("green"), at(1, "yellow"), at(5, "red")),
			promInstant(`histogram_quantile(0.99, sum by (le) (increase(vigil_revoke_time_to_revoke_seconds_bucket[$__range])))`, "p99"))).
		WithPanel(statPanel(spec{title: "Revoker halted", unit: "bool_yes_no",
			description: "Yes when the blast-radius cap tripped and vigil stopped revoking; a human ends it with `vigil revoke resume`."},
			thresholds(base("green"), at(1, "red")),
			prom(`max(vigil_revoke_halted)`, "halted"))).
		WithPanel(timeSeries(spec{title: "Anomalies by kind", unit: "short",
			description: "Anomalies per interval by detector and kind, from ClickHouse (by the time of their first offending event)."},
			chSeries(`
SELECT `+bucket("first_event_time")+`, concat(detector, '/', kind) AS series, count() AS anomalies
FROM anomalies FINAL
WHERE $__timeFilter(first_event_time) AND `+tenantFilter+`
GROUP BY t, series
ORDER BY t`))).
		WithPanel(timeSeries(spec{title: "Anomaly rate by severity", unit: "cps",
			description: "Anomalies raised per second by severity, from vigil's metrics (shadow-mode ones apart)."},
			prom(`sum by (severity, shadow) (rate(vigil_anomalies_total[$__rate_interval]))`, "{{severity}} shadow={{shadow}}"))).
		WithPanel(tablePanel(spec{title: "Latest anomalies", unit: "short",
			description: "The newest 200 anomalies in the range; a row's links open its family, session or user timeline in vigil-session."},
			chTable(`
SELECT first_event_time, severity, detector, kind, tenant, user_id, session_id, family_id, ip, shadow, id AS anomaly_id
FROM anomalies FINAL
WHERE $__timeFilter(first_event_time) AND `+tenantFilter+`
ORDER BY first_event_time DESC
LIMIT 200`)).DataLinks([]cogLink{
			sessionLink("Family timeline", "family", "family_id"),
			sessionLink("Session timeline", "session", "session_id"),
			sessionLink("User timeline", "user", "user_id"),
		})).
		WithRow(row("Revocations")).
		WithPanel(timeSeries(spec{title: "Revocation actions by status", unit: "short",
			description: "Action rows per interval by status: succeeded, failed, dry_run, suppressed by a guardrail, retrying."},
			chSeries(`
SELECT `+bucket("time")+`, concat(toString(status), if(guardrail = '', '', concat(' (', guardrail, ')'))) AS series, uniqExact(action_id, attempt_id) AS actions
FROM actions
WHERE $__timeFilter(time) AND `+tenantFilter+`
GROUP BY t, series
ORDER BY t`))).
		WithPanel(timeSeries(spec{title: "Session API attempts by outcome", unit: "reqps",
			description: "Requests to the session API per second by outcome, from vigil's metrics."},
			prom(`sum by (outcome) (rate(vigil_revoke_attempts_total[$__rate_interval]))`, "{{outcome}}"))).
		WithPanel(tablePanel(spec{title: "Latest actions", unit: "short",
			description: "The newest 200 action rows: what vigil did, why (the anomaly and rule), the guardrail that suppressed it, the API's answer, latency and time to revoke (ms)."},
			chTable(`
SELECT time, status, guardrail, action, scope, tenant, user_id, session_id, family_id, kind, rule,
       http_status, error, latency_ms, time_to_revoke_ms, anomaly_id, action_id
FROM actions FINAL
WHERE $__timeFilter(time) AND `+tenantFilter+`
ORDER BY time_ns DESC
LIMIT 200`)).DataLinks([]cogLink{sessionLink("Family timeline", "family", "family_id")})).
		WithRow(row("Sources of failed logins")).
		WithPanel(tablePanel(spec{title: "Top IPs by failed logins", unit: "short", w: 12,
			description: "The 20 addresses with the most failed logins in the range, with how many users they tried and their ASN and country."},
			chTable(`
SELECT ip, uniqExact(id) AS failed_logins, uniqExact(user_id) AS users, any(asn) AS asn, any(country) AS country
FROM events
WHERE $__timeFilter(time) AND `+tenantFilter+` AND type = 'login.failed'
GROUP BY ip
ORDER BY failed_logins DESC
LIMIT 20`)).DataLinks([]cogLink{sessionLink("IP timeline", "ip", "ip")})).
		WithPanel(tablePanel(spec{title: "Top ASNs by failed logins", unit: "short", w: 12,
			description: "The 20 networks (ASNs) with the most failed logins in the range, with their distinct addresses and users."},
			chTable(`
SELECT asn, uniqExact(id) AS failed_logins, uniqExact(ip) AS ips, uniqExact(user_id) AS users
FROM events
WHERE $__timeFilter(time) AND `+tenantFilter+` AND type = 'login.failed'
GROUP BY asn
ORDER BY failed_logins DESC
LIMIT 20`))).
		WithRow(row("Token reuse")).
		WithPanel(timeSeries(spec{title: "Reuse classified as theft", unit: "short",
			description: "token_reuse anomalies per interval by kind (replay from another client, after rotation, and so on), from ClickHouse."},
			chSeries(`
SELECT `+bucket("first_event_time")+`, kind, count() AS anomalies
FROM anomalies FINAL
WHERE $__timeFilter(first_event_time) AND `+tenantFilter+` AND detector = 'token_reuse'
GROUP BY t, kind
ORDER BY t`))).
		WithPanel(timeSeries(spec{title: "Reuse classified as benign", unit: "cps",
			description: "Refresh-token reuse the detector judged benign (multi-tab races, client retries) per second, by kind: how much reuse vigil deliberately ignores."},
			prom(`sum by (detector, kind) (rate(vigil_detect_benign_total[$__rate_interval]))`, "{{detector}} {{kind}}")))
}
