-- What the detectors found in an incident window, by detector and kind:
-- how many, the first offending event, how long detection took, and whom
-- it touched.
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
SELECT detector,
       kind,
       count() AS anomalies,
       toString(max(severity)) AS max_severity,
       sum(shadow) AS shadow,
       min(first_event_time) AS first_event,
       max(first_event_time) AS last_event,
       min(detected_at) AS first_detected,
       round(quantileExact(0.5)((detected_at_ns - first_event_time_ns) / 1e6), 1) AS detect_p50_ms,
       round(max((detected_at_ns - first_event_time_ns) / 1e6), 1) AS detect_max_ms,
       uniqExactIf(user_id, user_id != '') AS users,
       uniqExactIf(session_id, session_id != '') AS sessions,
       uniqExactIf(family_id, family_id != '') AS families,
       uniqExactIf(ip, ip != '') AS ips
FROM anomalies FINAL
WHERE first_event_time >= {from:DateTime} AND first_event_time <= {to:DateTime}
  AND ({tenant:String} = '' OR tenant = {tenant:String})
GROUP BY detector, kind
ORDER BY first_event, detector, kind
