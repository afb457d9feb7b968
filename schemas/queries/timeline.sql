-- Everything one subject did and what vigil made of it, in time order: its
-- events, the anomalies about it and vigil's actions on it. Events are found
-- through event_subjects (sorted by kind, subject, time), so the lookup
-- reads a narrow range instead of scanning events.
-- {kind:String}     session, family, user or ip
-- {subject:String}  the session id, token family id, user id or IP address
-- {from:DateTime}   start of the window (inclusive)
-- {to:DateTime}     end of the window (inclusive)
SELECT *
FROM
(
    SELECT time, time_ns, 'event' AS source, toString(type) AS what, toString(outcome) AS result, reason,
           session_id, family_id, user_id, ip, country, if(asn = 0, '', toString(asn)) AS asn, token_id, parent_token_id,
           device_id, user_agent, '' AS detail, id
    FROM events
    WHERE time >= {from:DateTime} AND time <= {to:DateTime}
      AND (type, time, id) GLOBAL IN
      (
          SELECT type, time, id
          FROM event_subjects
          WHERE (kind = {kind:String} OR ({kind:String} = 'family' AND kind = 'session'))
            AND subject = {subject:String}
            AND time >= {from:DateTime} AND time <= {to:DateTime}
      )
    LIMIT 1 BY type, time, id

    UNION ALL

    SELECT first_event_time, first_event_time_ns, 'anomaly', concat(detector, '/', kind), toString(severity),
           if(shadow = 1, 'shadow', ''), session_id, family_id, user_id, ip, '', '', '', '', '', '', evidence, id
    FROM anomalies FINAL
    WHERE first_event_time >= {from:DateTime} AND first_event_time <= {to:DateTime}
      AND multiIf({kind:String} = 'session', session_id, {kind:String} = 'family', family_id,
                  {kind:String} = 'user', user_id, ip) = {subject:String}

    UNION ALL

    SELECT time, time_ns, 'action', concat(action, ' ', scope), toString(status), guardrail,
           session_id, family_id, user_id, ip, '', '', '', '', '', '',
           concat('rule ', rule, if(http_status = 0, '', concat(', HTTP ', toString(http_status))),
                  if(error = '', '', concat(', ', error)),
                  if(time_to_revoke_ms = 0, '', concat(', time to revoke ', toString(round(time_to_revoke_ms)), ' ms'))),
           action_id
    FROM actions FINAL
    WHERE time >= {from:DateTime} AND time <= {to:DateTime}
      AND status != 'resumed'
      AND multiIf({kind:String} = 'session', session_id, {kind:String} = 'family', family_id,
                  {kind:String} = 'user', user_id, ip) = {subject:String}
)
ORDER BY time_ns, multiIf(source = 'event', 0, source = 'anomaly', 1, 2), id
