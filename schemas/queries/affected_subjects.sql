-- The users, sessions, token families and addresses an incident window's
-- anomalies named, with how many anomalies named each, the worst severity,
-- and whether vigil revoked it: a succeeded action of its own scope, of its
-- family (for a session) or of its user (for all of them).
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
-- {tenant:String}   one tenant, or '' for all
SELECT kind, subject, anomalies, max_severity, first_event,
       if((kind, subject) GLOBAL IN
          (
              SELECT s.1, s.2
              FROM actions FINAL
              ARRAY JOIN [('user', user_id), ('session', session_id), ('family', family_id)] AS s
              WHERE time >= {from:DateTime} AND status = 'succeeded' AND s.2 != ''
                AND ({tenant:String} = '' OR tenant = {tenant:String})
                AND (s.1 = scope OR (scope = 'family' AND s.1 = 'session') OR scope = 'user')
          ), 'yes', 'no') AS revoked
FROM
(
    SELECT s.1 AS kind, s.2 AS subject,
           uniqExact(id) AS anomalies,
           toString(max(severity)) AS max_severity,
           min(first_event_time) AS first_event
    FROM anomalies FINAL
    ARRAY JOIN [('user', user_id), ('session', session_id), ('family', family_id), ('ip', ip)] AS s
    WHERE first_event_time >= {from:DateTime} AND first_event_time <= {to:DateTime}
      AND ({tenant:String} = '' OR tenant = {tenant:String})
      AND s.2 != ''
      AND NOT (s.1 = 'family' AND family_id = session_id)
    GROUP BY kind, subject
)
ORDER BY first_event, kind, subject
