-- The users an anomaly touched: its own user, the users of its session or
-- family, or, for an address (a login storm), every user that address
-- tried within the anomaly's window; with what happened to each.
-- {anomaly:String}  the anomaly id
SELECT user_id,
       uniqExact(id) AS events,
       uniqExactIf(id, type = 'login.failed') AS failed_logins,
       uniqExactIf(id, type = 'session.created') AS logins,
       uniqExactIf(session_id, session_id != '') AS sessions,
       min(time) AS first,
       max(time) AS last
FROM events
WHERE time >= (SELECT min(least(window_start, first_event_time)) FROM anomalies WHERE id = {anomaly:String})
  AND time <= (SELECT max(greatest(window_end, detected_at)) FROM anomalies WHERE id = {anomaly:String})
  AND user_id != ''
  AND multiIf(
        (SELECT any(family_id) FROM anomalies WHERE id = {anomaly:String}) != '',
            family_id = (SELECT any(family_id) FROM anomalies WHERE id = {anomaly:String}),
        (SELECT any(session_id) FROM anomalies WHERE id = {anomaly:String}) != '',
            session_id = (SELECT any(session_id) FROM anomalies WHERE id = {anomaly:String}),
        (SELECT any(user_id) FROM anomalies WHERE id = {anomaly:String}) != '',
            user_id = (SELECT any(user_id) FROM anomalies WHERE id = {anomaly:String}),
        ip = (SELECT any(ip) FROM anomalies WHERE id = {anomaly:String}))
GROUP BY user_id
ORDER BY events DESC, user_id
