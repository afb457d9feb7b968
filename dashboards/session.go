package dashboards

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// kindVar and subjectVar are the chosen kind and subject as SQL strings.
var kindVar, subjectVar = sqlVar("kind"), sqlVar("subject")

// subjectFilter matches the events of the chosen subject through the
// event_subjects index (ordered by kind and subject). A family whose id is
// its first session's (the default) has only session rows there. GLOBAL
// keeps it valid on a cluster, where both tables are Distributed.
var subjectFilter = `id GLOBAL IN (
    SELECT id FROM event_subjects
    WHERE (kind = ` + kindVar + ` OR (` + kindVar + ` = 'family' AND kind = 'session')) AND subject = ` + subjectVar + ` AND $__timeFilter(time))`

// subjectMatch matches the anomalies' and actions' rows about the chosen
// subject.
var subjectMatch = `multiIf(` + kindVar + ` = 'session', session_id, ` + kindVar + ` = 'family', family_id, ` + kindVar + ` = 'user', user_id, ip) = ` + subjectVar

// sessionDashboard: one session, family, user or address — its timeline of
// events, the anomalies about it and what vigil did.
func sessionDashboard() *dashboard.DashboardBuilder {
	return newDashboard("vigil-session", "vigil / Session",
		"Drill-down to one subject (a session, token family, user or IP address): its events in order, the anomalies raised about it and the actions vigil took.", "now-24h").
		WithVariable(dashboard.NewCustomVariableBuilder("kind").
			Label("Subject kind").
			Description("What the subject is: a session id, a token family id, a user id or an IP address.").
			Values(dashboard.StringOrMap{String: cog.ToPtr("family,session,user,ip")})).
		WithVariable(dashboard.NewTextBoxVariableBuilder("subject").
			Label("Subject").
			Description("The id (or address) to follow; the security dashboard's links fill it in.")).
		WithRow(row("Summary")).
		WithPanel(statPanel(spec{title: "Events", unit: "short",
			description: "Events of the subject in the range (each stored event once)."},
			thresholds(base("blue")),
			chTable(`SELECT uniqExact(id) AS events FROM events WHERE $__timeFilter(time) AND `+subjectFilter))).
		WithPanel(statPanel(spec{title: "Distinct IPs and devices", unit: "short",
			description: "Addresses and devices the subject's events came from; many for one session is a sign of theft."},
			thresholds(base("blue")),
			chTable(`SELECT uniqExact(ip) AS ips, uniqExact(device_id) AS devices FROM events WHERE $__timeFilter(time) AND `+subjectFilter))).
		WithPanel(statPanel(spec{title: "Anomalies", unit: "short",
			description: "Anomalies raised about the subject in the range."},
			thresholds(base("green"), at(1, "red")),
			chTable(`SELECT uniqExact(id) AS anomalies FROM anomalies WHERE $__timeFilter(first_event_time) AND `+subjectMatch))).
		WithPanel(statPanel(spec{title: "Revocations", unit: "short",
			description: "Revocations of the subject the session service acknowledged (each action once)."},
			thresholds(base("blue")),
			chTable(`SELECT uniqExactIf(action_id, status = 'succeeded') AS revoked FROM actions WHERE $__timeFilter(time) AND `+subjectMatch))).
		WithRow(row("Timeline")).
		WithPanel(timeSeries(spec{title: "Events by type", unit: "short", w: 24, h: 6,
			description: "The subject's events per interval by type and outcome."},
			chSeries(`
SELECT `+bucket("time")+`, concat(toString(type), if(outcome = '', '', concat(' ', toString(outcome)))) AS series, uniqExact(id) AS events
FROM events
WHERE $__timeFilter(time) AND `+subjectFilter+`
GROUP BY t, series
ORDER BY t`))).
		WithPanel(tablePanel(spec{title: "Events", unit: "short", h: 14,
			description: "The subject's events, newest first (at most 1000; narrow the range for older ones): who, from where, with which token, and the outcome."},
			chTable(`
SELECT time, type, outcome, reason, actor, session_id, family_id, token_id, parent_token_id, ip, country, asn, device_id, user_agent, source
FROM events FINAL
WHERE $__timeFilter(time) AND `+subjectFilter+`
ORDER BY time_ns DESC
LIMIT 1000`))).
		WithPanel(tablePanel(spec{title: "Anomalies", unit: "short", w: 12,
			description: "Anomalies about the subject, with their evidence."},
			chTable(`
SELECT first_event_time, severity, detector, kind, session_id, family_id, ip, evidence, id AS anomaly_id
FROM anomalies FINAL
WHERE $__timeFilter(first_event_time) AND `+subjectMatch+`
ORDER BY first_event_time_ns`))).
		WithPanel(tablePanel(spec{title: "Actions", unit: "short", w: 12,
			description: "What vigil did about the subject: each decision and attempt, its guardrail, the API's answer and the time to revoke (ms)."},
			chTable(`
SELECT time, status, guardrail, action, scope, http_status, error, time_to_revoke_ms, anomaly_id
FROM actions FINAL
WHERE $__timeFilter(time) AND `+subjectMatch+`
ORDER BY time_ns`)))
}
